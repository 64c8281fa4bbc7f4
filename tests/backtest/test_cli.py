"""``quant backtest`` end to end on a synthetic store file: HTML, PNG, JSON and DuckDB rows."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from feeds.store import open_store, transaction
from feeds.synthetic import synthetic_market
from feeds.writer import write_bars

HEADLINE = (
    "n_sessions",
    "accuracy",
    "ci_low",
    "ci_high",
    "p_value",
    "baselines",
    "total_return",
    "annual_return",
    "sharpe",
    "max_drawdown",
    "trades",
    "costs_paid",
    "buy_and_hold_return",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "q.duckdb"
    # Synthetic bars standing in for the index in a throw-away store (nothing real beside them).
    market = synthetic_market(
        date(2023, 1, 1), date(2023, 12, 31), seed=2, symbol="000300.SH", minute_sessions=0
    )
    con = open_store(path)
    with transaction(con):
        write_bars(con, market.daily, file_sha256=None)
    con.close()
    return path


@pytest.fixture(scope="module")
def predictions(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two models in the layout `quant evaluate` writes (extra columns included)."""
    con = open_store(store, read_only=True)
    bars = con.sql("SELECT session, close FROM bars_daily ORDER BY session").pl()
    con.close()
    up = (bars["close"].shift(-1) > bars["close"]).cast(pl.Int8)
    frame = pl.DataFrame({"session": bars["session"], "label": up}).head(bars.height - 1)
    n = frame.height
    rows = [
        frame.with_columns(
            pl.lit(m).alias("model"),
            pl.Series("p_up", [((i * 7 + k) % 10) / 10 + 0.05 for i in range(n)]),
            pl.lit(0.5).alias("gate"),
            pl.lit(False).alias("has_intra"),
        )
        for k, m in enumerate(["multiscale", "lstm"])
    ]
    path = tmp_path_factory.mktemp("preds") / "predictions.parquet"
    pl.concat(rows).select("session", "model", "p_up", "label", "gate", "has_intra").write_parquet(
        path
    )
    return path


def _quant(*args: str) -> object:
    from quant.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_backtest_writes_every_output(store: Path, predictions: Path, tmp_path: Path) -> None:
    out = tmp_path / "bt"
    res = _quant(
        "--db",
        str(store),
        "backtest",
        "--symbol",
        "000300.SH",
        "--predictions",
        str(predictions),
        "--model",
        "multiscale",
        "--instrument",
        "etf",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    for name in (
        "report.html",
        "metrics.json",
        "equity.png",
        "drawdown.png",
        "rolling_accuracy.png",
        "calibration.png",
    ):
        assert (out / name).stat().st_size > 1000, name
    doc = json.loads((out / "metrics.json").read_text())
    assert set(HEADLINE) <= set(doc)
    assert set(doc["baselines"]) == {"always_up", "persistence"}
    assert doc["model"] == "multiscale" and doc["instrument"] == "etf"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "Proxy backtest" in html
    assert "variants" in html  # the sweep table and its selection warning
    con = duckdb.connect(str(store), read_only=True)
    runs = con.execute(
        "SELECT model, instrument, config_hash, n_sessions FROM backtest_runs"
    ).fetchall()
    assert runs == [("multiscale", "etf", doc["config_hash"], doc["n_sessions"])]
    acc = con.execute(
        "SELECT value FROM backtest_metrics WHERE scope = 'model' AND metric = 'accuracy'"
    ).fetchone()
    assert acc is not None and acc[0] == pytest.approx(doc["accuracy"])
    n_sweep = con.execute("SELECT count(*), sum(chosen::INT) FROM backtest_sweep").fetchone()
    assert n_sweep == (18, 1)  # default grid 3 x 3 x 2, configured variant marked
    con.close()


def test_persistence_predictor_without_a_file(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    res = _quant(
        "--db",
        str(store),
        "backtest",
        "--predictor",
        "persistence",
        "--instrument",
        "if",
        "--no-sweep",
        "--no-record",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    doc = json.loads((out / "metrics.json").read_text())
    # persistence IS the persistence baseline: same calls, same sessions
    assert doc["accuracy"] == doc["baselines"]["persistence"]


def test_bad_predictions_fail_with_the_rows_named(store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    pl.DataFrame(
        {
            "session": [date(2023, 3, 1), date(2023, 3, 2)],
            "model": "m",
            "p_up": [0.4, 1.5],
            "label": [1, 0],
        }
    ).write_parquet(bad)
    res = _quant(
        "--db",
        str(store),
        "backtest",
        "--predictions",
        str(bad),
        "--no-record",
        "--out",
        str(tmp_path / "o"),
    )
    assert res.exit_code == 1  # type: ignore[attr-defined]
    assert "row 1 (2023-03-02: 1.5)" in res.output  # type: ignore[attr-defined]


def test_predictions_from_a_store_table(store: Path, predictions: Path, tmp_path: Path) -> None:
    copy = tmp_path / "with_table.duckdb"
    copy.write_bytes(store.read_bytes())
    con = duckdb.connect(str(copy))
    con.execute(f"CREATE TABLE predictions AS SELECT * FROM read_parquet('{predictions}')")
    con.close()
    out = tmp_path / "t"
    res = _quant("--db", str(copy), "backtest", "--model", "lstm", "--no-sweep", "--out", str(out))
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["model"] == "lstm" and doc["n_sessions"] > 200
