"""Daily pipeline: end to end, idempotent, resumable, non-trading days, gate rule, budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from feeds.snapshot import open_snapshot, snapshot_path
from feeds.store import open_store
from quant import gate, pipeline_steps, registry
from quant.cli import cli
from quant.config import QuantConfig
from quant.finetune import calibrated_steps, train_scratch
from quant.gate import GateScore
from quant.market_data import MarketData
from quant.pipeline import get_run, models_dir, run_daily
from quant.settings_pipeline import GateSettings
from quant.signals import latest_signal, signals_between
from tests.quant.conftest import LAST, tiny_config_dict, to_toml

D1, D2 = date(2022, 12, 29), LAST


def test_daily_run_end_to_end_then_idempotent(make_env: Callable[..., QuantConfig]) -> None:
    cfg = make_env()
    path = Path(cfg.store.path)
    con = open_store(path)
    r = run_daily(con, cfg, D1, store_path=path)
    assert r.status == "done", r.error
    assert list(r.steps) == ["ingest", "finetune", "gate", "signal", "backtest", "report"]
    sig = latest_signal(con, cfg.data.symbol)
    champ = registry.champion(con)
    assert sig is not None and champ is not None
    assert (sig.session, sig.decision_session) == (D2, D1)  # the next session, made at D1's close
    assert sig.model_version == champ.version_id
    assert sig.last_bar_ts.date() == D1
    assert r.steps["finetune"]["detail"]["kind"] == "initial"  # empty registry: first model
    assert "directional accuracy" in r.headline and "Wilson" in r.headline
    report = json.loads(Path(r.steps["report"]["detail"]["path"]).read_text())
    assert report["headline"] == r.headline
    again = run_daily(con, cfg, D1, store_path=path)
    assert again.status == "already_done"
    assert len(signals_between(con, cfg.data.symbol, all_versions=True)) == 1
    run = get_run(con, cfg.data.symbol, D1)
    assert run is not None and (run["status"], run["attempts"]) == ("done", 1)
    # While this process holds the store for writing, another process cannot open it, but it
    # reads the published snapshot: the signal and the champion of the run.
    blocked = _read_in_other_process(path, "SELECT 1")
    assert blocked.returncode != 0 and "lock" in blocked.stderr.lower()
    seen = _read_in_other_process(
        snapshot_path(path), "SELECT model_version FROM signals ORDER BY session DESC LIMIT 1"
    )
    assert seen.returncode == 0 and seen.stdout.strip() == champ.version_id
    con.close()
    snap = open_snapshot(path)
    assert registry.champion(snap) == champ
    snap.close()


def _read_in_other_process(db: Path, sql: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute(sys.argv[2]).fetchall()[0][0])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(db), sql], capture_output=True, text=True, timeout=60
    )


def test_stop_request_ends_the_run_at_a_step_boundary(
    make_env: Callable[..., QuantConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)
    stop = threading.Event()
    real = pipeline_steps.STEPS["finetune"]

    def finetune_then_sigterm(st: pipeline_steps.RunState) -> object:
        out = real(st)
        stop.set()  # what the scheduler's SIGTERM handler does, mid-step
        return out

    monkeypatch.setitem(pipeline_steps.STEPS, "finetune", finetune_then_sigterm)
    r = run_daily(con, cfg, D1, stop=stop)
    assert r.status == "stopped"
    assert [k for k, s in r.steps.items() if s["status"] == "done"] == ["ingest", "finetune"]
    run = get_run(con, cfg.data.symbol, D1)
    assert run is not None and run["status"] == "running"  # not done, resumable
    assert len(registry.list_versions(con)) == 1  # the step finished whole
    monkeypatch.undo()
    assert run_daily(con, cfg, D1).status == "done"
    assert len(registry.list_versions(con)) == 1  # resumed at the gate
    con.close()


def test_second_day_finetunes_from_champion_and_records_what_it_saw(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)
    assert run_daily(con, cfg, D1).status == "done"
    first = registry.champion(con)
    r = run_daily(con, cfg, D2)
    assert r.status == "done", r.error
    ft = r.steps["finetune"]["detail"]
    assert ft["kind"] == "finetune"
    v = registry.get_version(con, ft["challenger"])
    assert first is not None and v.parent_id == first.version_id
    assert (ft["n_recent"], ft["n_replay"]) == (120, 60)
    rows = con.execute(
        "SELECT role, count(*), max(session) FROM model_training_data WHERE version_id = ? "
        "GROUP BY role ORDER BY role",
        [v.version_id],
    ).fetchall()
    window_start = date.fromisoformat(r.steps["gate"]["detail"]["window"][0])
    assert [(role, n) for role, n, _ in rows] == [("recent", 120), ("replay", 60)]
    assert all(last < window_start for _, _, last in rows)  # the gate window is never trained on
    decided = con.execute("SELECT promoted, reason FROM gate_decisions").fetchall()
    assert len(decided) == 2 and decided[-1][1] == r.steps["gate"]["detail"]["reason"]
    con.close()


def test_finetune_wall_clock_cap_binds_over_a_huge_step_budget(
    make_env: Callable[..., QuantConfig],
) -> None:
    # nothing but the clock may stop it: no patience, epoch or step cap within reach (with
    # patience 100 a fast machine ran a member's 100 epochs without improvement inside 1.5 s)
    big = {
        "budget_s": 1.5,
        "patience": 10**9,
        "max_epochs": 10**9,
        "max_steps": 10**6,
        "calibrate_steps": False,
    }
    cfg = make_env(finetune=big)
    con = open_store(cfg.store.path)
    assert run_daily(con, cfg, D1).status == "done"
    ft = run_daily(con, cfg, D2).steps["finetune"]["detail"]
    assert ft["seconds"] <= 1.5 * 1.05 + 0.25, ft  # 5%, plus one batch on a loaded CI box
    assert ft["seconds"] >= 1.0 and ft["stopped"] == "budget"  # trained until the cap
    con.close()


def test_finetune_step_budget_is_the_work_budget(make_env: Callable[..., QuantConfig]) -> None:
    steps = {"budget_s": 600.0, "patience": 100, "max_steps": 7, "calibrate_steps": False}
    cfg = make_env(finetune=steps)
    con = open_store(cfg.store.path)
    assert run_daily(con, cfg, D1).status == "done"
    ft = run_daily(con, cfg, D2).steps["finetune"]["detail"]
    assert (ft["steps"], ft["max_steps"], ft["stopped"]) == (2 * 7, 7, "max_steps"), ft  # 2 members
    con.close()


def test_calibrated_step_budget_fits_the_time_left() -> None:
    assert calibrated_steps(500, 0.01, 600.0) == 500  # the configured budget fits: unchanged
    assert calibrated_steps(500, 0.5, 100.0) == 180  # 90% of 100 s at 0.5 s a step
    assert calibrated_steps(500, 10.0, 1.0) == 1  # always at least one step


def test_failed_step_resumes_where_it_failed(
    make_env: Callable[..., QuantConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)

    def broken(st: pipeline_steps.RunState) -> None:
        raise pipeline_steps.StepError("vendor late")

    monkeypatch.setitem(pipeline_steps.STEPS, "signal", broken)
    r = run_daily(con, cfg, D1)
    assert r.status == "failed" and "vendor late" in (r.error or "")
    assert [k for k, s in r.steps.items() if s["status"] == "done"] == [
        "ingest",
        "finetune",
        "gate",
    ]
    assert latest_signal(con, cfg.data.symbol) is None
    n_versions = len(registry.list_versions(con))
    monkeypatch.undo()
    again = run_daily(con, cfg, D1)
    assert again.status == "done", again.error
    assert len(registry.list_versions(con)) == n_versions  # fine-tune was not re-run
    run = get_run(con, cfg.data.symbol, D1)
    assert run is not None and (run["status"], run["attempts"]) == ("done", 2)
    con.close()


def test_missing_bar_waits_for_data_and_non_trading_day_is_skipped(
    make_env: Callable[..., QuantConfig], caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)
    r = run_daily(con, cfg, date(2023, 1, 3))  # a trading day after the data ends
    assert r.status == "waiting_for_data"
    assert "no SYN300.SIM daily bar for 2023-01-03" in (r.error or "")
    with caplog.at_level("INFO"):
        assert run_daily(con, cfg, date(2023, 1, 2)).status == "skipped"  # New Year holiday
    assert "not an XSHG trading day" in caplog.text
    assert get_run(con, cfg.data.symbol, date(2023, 1, 2)) is None
    con.close()


def test_corrupt_champion_weights_previous_champion_serves(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env(gate={"max_log_loss_increase": 10.0, "skip_unchanged": False})
    con = open_store(cfg.store.path)
    assert run_daily(con, cfg, date(2022, 12, 28)).status == "done"
    old = registry.champion(con)
    assert run_daily(con, cfg, D1).status == "done"  # this gate always promotes
    new = registry.champion(con)
    assert old is not None and new is not None and new.version_id != old.version_id
    (models_dir(cfg) / new.path).write_bytes(b"\0" * 64)
    r = run_daily(con, cfg, D2)
    assert r.status == "done", r.error
    assert r.steps["finetune"]["detail"]["challenger"] != new.version_id
    hist = registry.champion_history(con)
    assert any(h["action"] == "fallback" and h["version_id"] == old.version_id for h in hist)
    con.close()


@pytest.mark.parametrize(
    ("ch", "champ", "promote", "why"),
    [
        (GateScore(20, 0.690, 0.55), GateScore(20, 0.693, 0.55), True, "promoted: not worse"),
        (GateScore(20, 0.700, 0.60), GateScore(20, 0.693, 0.55), False, "log loss higher"),
        (GateScore(20, 0.690, 0.30), GateScore(20, 0.693, 0.55), True, "promoted"),  # rule: loss
        (GateScore(20, 0.695, 0.55), GateScore(20, 0.693, 0.55), False, "margin 0)"),
    ],
)
def test_gate_rule(ch: GateScore, champ: GateScore, promote: bool, why: str) -> None:
    d = gate.decide(ch, champ, GateSettings())
    assert d.promote is promote and why in d.reason


@pytest.mark.parametrize(
    ("ch", "promote", "why"),
    [
        (GateScore(20, 0.695, 0.55), True, "margin 0.005"),  # within the margin
        (GateScore(20, 0.699, 0.55), False, "log loss higher"),
        (GateScore(20, 0.690, 0.45), False, "accuracy lower"),  # the optional clause, on
        (GateScore(20, 0.690, 0.50), True, "promoted"),  # one session in 20 is allowed
    ],
)
def test_gate_margin_and_optional_accuracy_clause(ch: GateScore, promote: bool, why: str) -> None:
    s = GateSettings(max_log_loss_increase=0.005, max_accuracy_drop=0.05)
    d = gate.decide(ch, GateScore(20, 0.693, 0.55), s)
    assert d.promote is promote and why in d.reason


def test_gate_keeps_a_champion_the_fine_tune_left_unchanged() -> None:
    same = GateScore(20, 0.690, 0.55)
    d = gate.decide(same, same, GateSettings(), unchanged=True)
    assert not d.promote and "kept the champion's weights" in d.reason


def test_gate_without_champion_promotes() -> None:
    d = gate.decide(GateScore(20, 0.7, 0.5), None, GateSettings())
    assert d.promote and d.reason == "no champion yet"


def test_cli_run_daily_models_and_finetune(
    make_env: Callable[..., QuantConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_env()
    toml = tmp_path / "quant.toml"
    toml.write_text(to_toml(tiny_config_dict(tmp_path)))
    for key in [k for k in os.environ if k.startswith("QUANT")]:
        monkeypatch.delenv(key)
    db = str(cfg.store.path)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--db", db, "--config", str(toml), *args])

    res = run("run-daily", "--date", D1.isoformat())
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("done: SYN300.SIM 2022-12-29: next session 2022-12-30")
    listed = json.loads(run("models", "list", "--json").stdout)
    assert [v["champion"] for v in listed] == [True]
    first = listed[0]["version_id"]
    assert "no previous champion" in run("models", "rollback").output
    res = run("finetune", "--date", D2.isoformat(), "--budget", "1")
    assert res.exit_code == 0, res.output
    assert "challenger v" in res.stdout
    listed = json.loads(run("models", "list", "--json").stdout)
    second = listed[-1]["version_id"]
    assert run("models", "promote", second).exit_code == 0
    assert json.loads(run("models", "show").stdout)["version_id"] == second
    assert run("models", "rollback").exit_code == 0
    assert json.loads(run("models", "show").stdout)["version_id"] == first
    assert run("run-daily", "--date", "2023-01-02").stdout.startswith("2023-01-02 is not")


def test_training_from_scratch_is_reproducible(make_env: Callable[..., QuantConfig]) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path, read_only=True)
    data = MarketData.load(con, cfg, D1, symbol=cfg.data.symbol, intraday_symbol=None)
    con.close()
    idx = np.arange(200)
    a, b = (train_scratch(data, idx, cfg.forecast, "fused") for _ in range(2))
    assert "budget" not in a.stopped
    for k, t in a.forecaster.model.state_dict().items():
        assert t.equal(b.forecaster.model.state_dict()[k]), k


def test_no_verifiable_champion_trains_a_new_first_model(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)
    assert run_daily(con, cfg, D1).status == "done"
    lost = registry.champion(con)
    assert lost is not None
    (models_dir(cfg) / lost.path).unlink()
    r = run_daily(con, cfg, D2)
    assert r.status == "done", r.error
    assert r.steps["finetune"]["detail"]["kind"] == "initial"
    champ = registry.champion(con)
    assert champ is not None and champ.version_id == r.steps["finetune"]["detail"]["challenger"]
    con.close()


def test_a_write_that_fails_rolls_back_the_step(
    make_env: Callable[..., QuantConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)
    real = pipeline_steps.gate.record

    def record_then_fail(*a: object, **k: object) -> None:
        real(*a, **k)  # type: ignore[arg-type]
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline_steps.gate, "record", record_then_fail)
    r = run_daily(con, cfg, D1)
    assert r.status == "failed" and "gate: RuntimeError: disk full" in (r.error or "")
    assert registry.champion(con) is None  # the promotion rolled back with the record
    assert con.execute("SELECT count(*) FROM gate_decisions").fetchall()[0][0] == 0
    monkeypatch.undo()
    assert run_daily(con, cfg, D1).status == "done"
    assert registry.champion(con) is not None
    con.close()
