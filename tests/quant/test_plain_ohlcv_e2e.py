"""A plain OHLCV CSV without amount: ingested, evaluated, backtested and served end to end."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from feeds.synthetic import synthetic_market
from models.forecaster import Forecaster
from quant.api.app import create_app
from quant.api.keys import KeyStore, keys_path
from quant.cli import cli
from quant.config import QuantConfig
from tests.support.demo import register_champion, request_body

SMALL = {
    "QUANT__FORECAST__FEATURES__DAILY_WINDOW": "10",
    "QUANT__FORECAST__FEATURES__ZSCORE_WINDOW": "10",
    "QUANT__FORECAST__FEATURES__VOL_WINDOW": "10",
    "QUANT__FORECAST__MODEL__D_MODEL": "8",
    "QUANT__FORECAST__MODEL__SHORT_HEADS": "2",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("QUANT"):
            monkeypatch.delenv(key)


def _quant(*args: str | Path) -> str:
    r = CliRunner().invoke(cli, [str(a) for a in args], env=SMALL, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.slow
def test_plain_ohlcv_without_amount_end_to_end(tmp_path: Path) -> None:
    daily = synthetic_market(date(2022, 1, 4), date(2023, 6, 30), seed=9, minute_sessions=0).daily
    csv = tmp_path / "prices.csv"
    daily.select(
        pl.col("session").alias("date"), "open", "high", "low", "close", "volume"
    ).write_csv(csv)
    store = tmp_path / "store" / "q.duckdb"
    out, bt = tmp_path / "eval", tmp_path / "bt"

    ingested = _quant("--db", store, "ingest", "--symbol", "000300.SH", csv)
    assert "loaded=" in ingested and "unmapped" not in ingested
    _quant(
        "--db", store, "evaluate", "--symbol", "000300.SH", "--start", "2023-01-03",
        "--retrain-every", "60", "--max-epochs", "1", "--models", "logistic,fused",
        "--out", out,
    )  # fmt: skip
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["config"]["features"]["use_amount"] is False
    assert doc["models"]["fused"]["n"] > 50
    fc = Forecaster.from_checkpoint(out / "checkpoints" / "fused.pt")
    assert fc.spec.use_amount is False  # recorded in the checkpoint's FeatureSpec

    shown = _quant(
        "--db", store, "backtest", "--predictions", out / "predictions.parquet",
        "--model", "fused", "--no-sweep", "--out", bt,
    )  # fmt: skip
    assert (bt / "metrics.json").exists() and "accuracy" in shown

    # served: the champion trained without amount answers bars that carry none
    register_champion(store, store.parent / "models", fc)
    ks = KeyStore(keys_path(store))
    key = ks.create(["forecast", "signals:read"])[0]
    ks.close()
    cfg = QuantConfig.model_validate({"store": {"path": str(store)}})
    stored = pl.read_csv(csv, try_parse_dates=True).rename({"date": "session"})
    body = request_body(stored.with_columns(amount=None), None, date(2023, 6, 30))
    for bar in body["daily"]:
        del bar["amount"]
    with TestClient(create_app(cfg)) as client:
        h = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/models", headers=h).json()["uses_amount"] is False
        r = client.post("/v1/forecast", json=body, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["used_amount"] is False and 0 <= r.json()["p_up"] <= 1
