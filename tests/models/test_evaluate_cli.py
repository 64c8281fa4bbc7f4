"""`quant evaluate` end to end on a small synthetic store, and the real files when present."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from feeds.store import open_store, transaction
from feeds.synthetic import SYNTHETIC_SYMBOL, synthetic_market
from feeds.writer import write_bars
from models.config import FeatureSpec
from models.factory import ALL_MODELS, BASELINES
from models.features import INTRADAY_FEATURES, build_windows
from models.inputs import load_daily, load_intraday
from quant.cli import cli
from tests.models.conftest import REAL, real_data

SCORE_KEYS = {
    "n",
    "accuracy",
    "ci_low",
    "ci_high",
    "p_value",
    "balanced_accuracy",
    "auc",
    "brier",
    "log_loss",
    "mcnemar_p",
}


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    m = synthetic_market(date(2022, 1, 1), date(2023, 3, 31), seed=5, minute_sessions=220)
    path = tmp_path / "q.duckdb"
    con = open_store(path)
    with transaction(con):
        write_bars(con, pl.concat([m.daily, m.minute]), file_sha256=None)
    con.close()
    return path


def test_evaluate_writes_the_documented_outputs(store_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = [
        "--db",
        str(store_file),
        "evaluate",
        "--symbol",
        SYNTHETIC_SYMBOL,
        "--start",
        "2022-12-01",
        "--retrain-every",
        "30",
        "--max-epochs",
        "1",
        "--intraday-symbol",
        SYNTHETIC_SYMBOL,
        "--intraday-frequency",
        "5m",
        "--out",
        str(out),
    ]
    env = {
        "QUANT__FORECAST__FEATURES__DAILY_WINDOW": "10",
        "QUANT__FORECAST__MODEL__D_MODEL": "8",
        "QUANT__FORECAST__MODEL__SHORT_HEADS": "2",
    }
    r = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "evaluation.json").read_text())
    assert set(doc["models"]) == set(ALL_MODELS)
    assert doc["test_sessions"] == doc["models"]["fused"]["n"] > 60
    for name, rec in doc["models"].items():
        assert set(rec) >= SCORE_KEYS, name
        assert set(rec["mcnemar_p"]) == set(BASELINES) - {name}
        assert 0.0 <= rec["ci_low"] <= rec["accuracy"] <= rec["ci_high"] <= 1.0
    assert doc["config"]["features"]["daily_window"] == 10
    pred = pl.read_parquet(out / "predictions.parquet")
    assert {"session", "model", "p_up", "label"} <= set(pred.columns)
    assert pred.schema["session"] == pl.Date and set(pred["label"].unique()) <= {0, 1}
    assert pred.group_by("session", "model").len()["len"].max() == 1
    first = pred.get_column("session").min()
    assert isinstance(first, date) and first >= date(2022, 12, 1)
    assert (out / "evaluation.md").exists() and (out / "accuracy.png").exists()
    assert (out / "checkpoints" / "fused.pt").exists()


@real_data
def test_real_intraday_windows_cover_the_ablation_span_and_ignore_roll_gaps(tmp_path: Path) -> None:
    from feeds.ingest import ingest_file

    con = open_store(tmp_path / "real.duckdb")
    files = (
        "csi300_daily_wind_rlcsi300.csv",
        "if_main_5min_wondertrader_2014-2019.csv",
        "if_futures_1min_sina_expiryweeks.csv",
    )
    for f in files:
        ingest_file(con, REAL / f)
    daily, intra = load_daily(con, "000300.SH"), load_intraday(con, "IF.CFE", 5)
    con.close()
    w = build_windows(daily, intra, FeatureSpec())
    s = w.sessions.astype("datetime64[D]")
    span = (s >= np.datetime64("2015-01-01")) & (s <= np.datetime64("2019-10-31"))
    assert span.sum() > 1150 and w.has_intra[span].all()
    # after 2019-10 only the 1-minute expiry weeks (resampled to 5 minutes) have intraday bars
    late = w.has_intra[s > np.datetime64("2019-10-31")]
    assert 150 < late.sum() < 0.2 * late.size
    # first bars read open -> close of the bar, so no roll or overnight gap shows as a move
    first_ret = w.x_intra[:, 0, INTRADAY_FEATURES.index("ret")]
    assert np.abs(first_ret[w.m_intra[:, 0]]).max() < 0.05
