"""The research API on the synthetic market alone (the path a clone without real files takes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from feeds.snapshot import snapshot_path
from models.factory import build, model_config
from models.normalise import apply_norm, fit_norm
from models.train import fit
from quant.cli import cli
from quant.config import load_config
from quant.research import backtests, forecasting, market, model_plots, store
from quant.research.hooks import LossCurve, attention_weights
from tests.notebooks.conftest import build_store

CFG = load_config(env={})  # the research helpers take the config; they never load it


@pytest.fixture(scope="module")
def stand_in() -> Iterator[store.ResearchStore]:
    """No store at the path: the small in-memory synthetic market stands in."""
    db = store.open_store_readonly("no/such/store.duckdb", CFG, small=True)
    yield db
    db.close()


@pytest.fixture(scope="module")
def data(stand_in: store.ResearchStore) -> Iterator[forecasting.ResearchData]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the CI box has 2 shared cores
    yield forecasting.load_research_data(stand_in.con, CFG, small=True)
    torch.set_num_threads(before)


def test_missing_store_falls_back_to_synthetic(stand_in: store.ResearchStore) -> None:
    assert stand_in.opened == ":memory:" and not stand_in.real
    assert "SYNTHETIC" in stand_in.note


def test_relative_store_resolves_from_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parent)  # like a kernel started in notebooks/
    assert store.resolve_store("var/x.duckdb") == store.project_root() / "var" / "x.duckdb"
    assert (store.project_root() / "pyproject.toml").exists()


def test_market_figures_and_tables_on_synthetic(stand_in: store.ResearchStore) -> None:
    daily = market.plot_daily_closes(stand_in.con, CFG)
    assert "SYNTHETIC" in daily.axes[0].get_title()
    day = market.plot_intraday_day(stand_in.con, CFG)
    top = day.axes[0]
    assert len(top.lines) == 2  # morning and afternoon: no line drawn across lunch
    morning_end = top.lines[0].get_xdata()[-1]
    afternoon_start = top.lines[1].get_xdata()[0]
    assert (afternoon_start - morning_end).total_seconds() == 91 * 60  # 11:30 -> 13:01
    assert len(top.patches) == 1  # the shaded lunch break
    assert market.quarantine_table(stand_in.con).is_empty()
    rec = market.reconcile_table(stand_in.con, CFG)
    assert rec.height == 1 and rec["max_rel_diff_close"][0] < 1e-9  # minute bars sum exactly
    assert set(market.symbols(stand_in.con)["symbol"]) == {"SYN300.SIM"}  # its own symbol


def test_research_window_has_intraday_bars(data: forecasting.ResearchData) -> None:
    assert data.intraday_symbol == "SYN300.SIM"  # no IF futures bars: its own minute bars
    assert "SYNTHETIC" in data.note
    assert data.windows.has_intra.all()
    assert len(data.windows) == data.labels.size == 200 and data.n_train == 160


def test_loss_curve_matches_the_loop_and_changes_nothing(data: forecasting.ResearchData) -> None:
    tr_idx = np.arange(data.n_train)
    tr = apply_norm(data.windows.take(tr_idx), fit_norm(data.windows.take(tr_idx)))
    y = data.labels[tr_idx]
    cfg = data.cfg
    torch.manual_seed(0)
    plain = build(model_config("fused", cfg.features, cfg.model))
    fit(plain, tr, y, cfg.train, max_epochs=3)
    torch.manual_seed(0)
    hooked = build(model_config("fused", cfg.features, cfg.model))
    with LossCurve(hooked, tr, y, cfg.train.val_fraction) as curve:
        r = fit(hooked, tr, y, cfg.train, max_epochs=3)
    c = curve.frame()
    assert c["epoch"].to_list() == list(range(1, r.epochs + 1))
    assert c["val_loss"][r.best_epoch - 1] == pytest.approx(r.best_val_loss, abs=1e-6)
    for k, v in plain.state_dict().items():
        assert torch.equal(v, hooked.state_dict()[k]), k


def test_attention_weights_are_distributions(data: forecasting.ResearchData) -> None:
    trained = forecasting.train_models_for_research(data, max_epochs=1, names=("fused",))
    fc = trained["fused"].forecaster
    w = apply_norm(data.windows.take(np.array([len(data.windows) - 1])), fc.norm)
    att = attention_weights(fc.model, w)
    spec, heads = data.cfg.features, data.cfg.model.short_heads
    assert att["daily"].shape == (heads // 2, spec.daily_window, spec.daily_window)
    assert att["intraday"].shape[0] == heads
    np.testing.assert_allclose(att["daily"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(att["intraday"].sum(-1), 1.0, atol=1e-5)
    absent = ~w.m_intra[0]
    assert np.all(att["intraday"][..., absent] == 0.0)
    fig = model_plots.plot_attention(trained["fused"], data)
    assert "P(up)" in fig.get_suptitle()


def test_slot_labels_follow_the_session_grid() -> None:
    labels = model_plots.slot_labels(48, 5)
    assert (labels[0], labels[23], labels[24], labels[47]) == ("09:35", "11:30", "13:05", "15:00")


def test_backtest_run_created_once_and_replayed(tmp_path: Path) -> None:
    path = build_store(tmp_path / "q.duckdb", real=False)
    run = backtests.load_backtest_run(path, CFG, small=True)
    assert "held no backtest run" in run.note and run.run["model"] == "logistic"
    again = backtests.load_backtest_run(path, CFG, small=True)  # from the republished snapshot
    assert again.run["run_id"] == run.run["run_id"] and "held no" not in again.note
    check = backtests.replay_check(again, backtests.replay(again))
    assert check["agree"].all()
    acc = backtests.accuracy_table(again)
    assert acc["scope"].to_list() == ["model: logistic", "always_up", "persistence"]
    assert acc["n"][0] == run.run["n_sessions"]


def test_run_recorded_by_quant_backtest_is_read_and_replayed(tmp_path: Path) -> None:
    path = build_store(tmp_path / "q.duckdb", real=False)  # snapshot published before the run
    args = ["--db", str(path), "backtest", "--symbol", "SYN300.SIM", "--predictor", "persistence"]
    args.append("--no-sweep")
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    run = backtests.load_backtest_run(
        path, CFG, small=True
    )  # the store itself: the snapshot is older
    assert run.run["model_version"] == "rule:persistence" and "held no" not in run.note
    assert backtests.replay_check(run, backtests.replay(run))["agree"].all()


def test_reader_falls_back_to_the_snapshot_while_a_writer_holds_the_store(
    tmp_path: Path,
) -> None:
    path = build_store(tmp_path / "q.duckdb", real=False)
    hold = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
        "print('held', flush=True); time.sleep(60)"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", hold, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "held"
        db = store.open_store_readonly(path, CFG, prefer_store=True)
        assert db.opened == str(snapshot_path(path)) and "snapshot published" in db.note
        db.close()
    finally:
        writer.terminate()
        writer.wait(timeout=30)
