"""Notebook 03: a backtest run from the store, its accuracy table and plots, a small sweep.

A run is read from ``backtest_runs``/``backtest_metrics`` (written by ``quant backtest``) and
replayed from its stored configuration, so the plots come from the same code as the HTML report
and the replayed figures can be checked against the stored ones.  When the store holds no run,
one is recorded from a quickly trained predictor (a logistic regression on the daily features,
fitted only on sessions before the backtest span); its predictions are kept in
``research_predictions`` so the run can be replayed later.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from backtest.config import BacktestConfig, SweepGrid
from backtest.inputs import persistence_predictions, select_model
from backtest.plots import plot_calibration, plot_drawdown, plot_equity, plot_rolling_accuracy
from backtest.report import metrics_document
from backtest.run import BacktestResult, run_backtest
from backtest.runs import config_json, record_run
from backtest.schema import BACKTEST_TABLES
from backtest.sweep import SweepResult, run_sweep
from feeds.lock import LockHeldError
from feeds.read import daily_bars
from feeds.schema import create_tables
from feeds.snapshot import publish_snapshot
from feeds.store import Store, StoreError
from models.features import build_windows
from models.labels import labelled, next_direction
from models.logistic import fit_logistic
from models.normalise import fit_norm
from quant.config import QuantConfig
from quant.research.figures import PngImage
from quant.research.store import open_store_readonly, research_symbol
from quant.schema import RESEARCH_PREDICTIONS


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def latest_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The newest run in ``backtest_runs`` (None when the table is absent or empty)."""
    if "backtest_runs" not in _tables(con):
        return None
    rows = con.execute("SELECT run_id FROM backtest_runs ORDER BY created_at DESC LIMIT 1")
    got = rows.fetchall()
    return str(got[0][0]) if got else None


def logistic_predictions(
    bars: pl.DataFrame, cfg: QuantConfig, *, test_sessions: int
) -> pl.DataFrame:
    """Out-of-sample P(up) of the last ``test_sessions`` labelled sessions (at most half of them)
    from one logistic fit on every earlier sample whose label settled before the first of them."""
    fc = cfg.forecast
    w, y, settled = labelled(
        build_windows(bars, None, fc.features), next_direction(bars, fc.features.horizon)
    )
    test_sessions = min(test_sessions, len(w) // 2)
    first = w.sessions[-test_sessions]
    tr = np.nonzero(settled < first)[0]
    te = np.arange(len(w) - test_sessions, len(w))
    norm = fit_norm(w.take(tr))
    ev = fc.evaluation
    lm = fit_logistic(w.take(tr), y[tr], norm, lags=ev.logistic_lags, c=ev.logistic_c)
    return pl.DataFrame(
        {
            "session": w.sessions[te].astype("datetime64[D]"),
            "model": "logistic",
            "p_up": lm.predict(w.take(te)),
        }
    ).with_columns(pl.Series("label", y[te]).cast(pl.Int8))


def create_research_run(
    con: duckdb.DuckDBPyConnection, qc: QuantConfig, *, small: bool
) -> tuple[str, str]:
    """Backtest a quickly trained logistic predictor and record the run; (run_id, note)."""
    symbol = research_symbol(con, qc)
    bars = daily_bars(con, symbol, priority=qc.store.source_priority)
    preds = logistic_predictions(bars, qc, test_sessions=250 if small else 750)
    cfg = qc.backtest
    result = run_backtest(preds, bars, cfg)
    swept = run_sweep(preds, bars, cfg)
    doc = metrics_document(result, swept, symbol=symbol)
    first = preds["session"][0]
    version = f"research:logistic fitted on labels settled before {first}"
    run_id = record_run(
        con,
        doc,
        config_json=config_json(doc, cfg.model_dump(mode="json")),
        model_version=version,
        source=str(bars["source"][0]),
        out_dir=None,
        sweep=swept.table,
    )
    create_tables(con, (RESEARCH_PREDICTIONS,))
    con.register("_rp", preds.with_columns(pl.lit(run_id).alias("run_id")).to_arrow())
    con.execute(
        "INSERT INTO research_predictions SELECT run_id, session, model, p_up, label FROM _rp"
    )
    con.unregister("_rp")
    note = (
        f"the store held no backtest run: recorded run {run_id[:12]} from a logistic regression "
        f"({version}; {preds.height} test sessions)"
    )
    return run_id, note


@dataclass(frozen=True)
class BacktestRun:
    """One recorded run and everything needed to replay it (no open connection)."""

    run: dict[str, Any]  # the backtest_runs row
    metrics: pl.DataFrame  # scope, metric, value
    sweep: pl.DataFrame  # the sweep recorded with the run (may be empty)
    config: BacktestConfig
    predictions: pl.DataFrame
    bars: pl.DataFrame
    note: str


def _predictions(
    con: duckdb.DuckDBPyConnection, run: dict[str, Any], bars: pl.DataFrame
) -> pl.DataFrame:
    tables = _tables(con)
    if "research_predictions" in tables:
        p = con.sql(
            "SELECT session, model, p_up, label FROM research_predictions WHERE run_id = ? "
            "ORDER BY session",
            params=[run["run_id"]],
        ).pl()
        if p.height:
            return p
    if run["model_version"] == "rule:persistence":
        return persistence_predictions(bars)
    if "predictions" in tables:
        return select_model(con.sql("SELECT * FROM predictions").pl(), run["model"])
    raise LookupError(
        f"run {run['run_id']}: predictions of {run['model']} ({run['model_version']}) are not in "
        "the store; backtest a file again with `quant backtest --predictions FILE`"
    )


def _read_run(
    con: duckdb.DuckDBPyConnection, cfg: QuantConfig, run_id: str, note: str
) -> BacktestRun:
    cur = con.execute("SELECT * FROM backtest_runs WHERE run_id = ?", [run_id])
    names = [d[0] for d in cur.description or []]
    row = cur.fetchall()
    if not row:
        raise LookupError(f"no backtest run {run_id!r} in the store")
    run = dict(zip(names, row[0], strict=True))
    q = "SELECT * EXCLUDE (run_id) FROM {} WHERE run_id = ? ORDER BY ALL"
    metrics = con.sql(q.format("backtest_metrics"), params=[run_id]).pl()
    sweep = con.sql(q.format("backtest_sweep"), params=[run_id]).pl()
    config = BacktestConfig.model_validate(json.loads(run["config_json"])["backtest"])
    prio = cfg.store.source_priority
    bars = daily_bars(con, run["symbol"], source=run["source"], priority=prio)
    return BacktestRun(run, metrics, sweep, config, _predictions(con, run, bars), bars, note)


def load_backtest_run(
    store: str | Path, cfg: QuantConfig, *, run_id: str | None = None, small: bool = False
) -> BacktestRun:
    """Run ``run_id`` (default: the newest) from the store; records one first when none exists.

    Reads the store file itself unless a writer holds it (``quant backtest`` records runs without
    republishing the snapshot).  Recording needs the write lock for a moment; the snapshot is
    then republished (under the store's writer lock: a running scheduler makes this a
    ``LookupError`` that says so).
    """
    db = open_store_readonly(store, cfg, small=small, prefer_store=True)
    try:
        rid = run_id or latest_run_id(db.con)
        if rid is not None:
            which = "the newest recorded run" if run_id is None else "run"
            return _read_run(db.con, cfg, rid, f"{db.note}; {which} {rid[:12]}")
        if db.opened == ":memory:":  # the synthetic stand-in is ours and writable
            create_tables(db.con, BACKTEST_TABLES)
            rid, note = create_research_run(db.con, cfg, small=small)
            return _read_run(db.con, cfg, rid, f"{db.note}; {note}")
    finally:
        db.close()
    with ExitStack() as stack:
        writing = Store(db.path, cfg.store.source_priority).write("research: record a backtest run")
        try:
            w = stack.enter_context(writing)  # the writer lock, as every writer takes it
        except (StoreError, LockHeldError) as exc:
            msg = f"no backtest run in {db.opened}, and recording one needs the write lock"
            raise LookupError(f"{msg}: {exc}") from exc
        rid, note = create_research_run(w.con, cfg, small=small)
        publish_snapshot(w.con, db.path)
        return _read_run(w.con, cfg, rid, f"{db.note}; {note}")


def run_summary(run: BacktestRun) -> pl.DataFrame:
    """The run's identity: model and version, bars, instrument, sessions, config hash."""
    keys = ["run_id", "created_at", "model", "model_version", "symbol", "source", "instrument"]
    keys += ["first_session", "last_session", "n_sessions", "config_hash"]
    return pl.DataFrame({"field": keys, "value": [str(run.run[k]) for k in keys]})


def accuracy_table(run: BacktestRun) -> pl.DataFrame:
    """Directional accuracy of the model and the baselines on the same sessions (stored figures)."""
    metrics = ["n", "accuracy", "ci_low", "ci_high", "p_value", "mcnemar_p_value_vs_model"]
    scopes = [
        "model",
        *sorted({s for s in run.metrics["scope"] if s in ("always_up", "persistence")}),
    ]
    m = run.metrics.filter(pl.col("scope").is_in(scopes) & pl.col("metric").is_in(metrics))
    wide = m.pivot(on="metric", index="scope", values="value")
    order = pl.DataFrame({"scope": scopes}).with_row_index("_i")
    wide = wide.join(order, on="scope").sort("_i").drop("_i")
    name = pl.when(pl.col("scope") == "model").then(pl.lit(f"model: {run.run['model']}"))
    return wide.with_columns(name.otherwise(pl.col("scope")).alias("scope")).select(
        "scope", *[c for c in metrics if c in wide.columns]
    )


def replay(run: BacktestRun) -> BacktestResult:
    """The run recomputed from its stored configuration, predictions and bars."""
    return run_backtest(run.predictions, run.bars, run.config, instrument=run.run["instrument"])


def replay_check(run: BacktestRun, result: BacktestResult) -> pl.DataFrame:
    """Stored against replayed headline figures (they agree unless data or code changed)."""
    stored = {(s, k): v for s, k, v in run.metrics.iter_rows()}
    now = {
        ("model", "n"): float(result.accuracy["model"]["n"]),
        ("model", "accuracy"): result.accuracy["model"]["accuracy"],
        **{("trading", k): result.trading[k] for k in ("total_return", "sharpe", "max_drawdown")},
    }
    rows = [(f"{s}.{k}", stored.get((s, k)), v) for (s, k), v in now.items()]
    df = pl.DataFrame(rows, schema=["figure", "stored", "replayed"], orient="row")
    return df.with_columns(((pl.col("stored") - pl.col("replayed")).abs() < 1e-9).alias("agree"))


def _report_plot(make: Callable[[BacktestResult, Path], Path], result: BacktestResult) -> PngImage:
    with tempfile.TemporaryDirectory() as tmp:
        return PngImage.read(make(result, Path(tmp) / f"{make.__name__}.png"))


def equity_plot(result: BacktestResult) -> PngImage:
    return _report_plot(plot_equity, result)


def drawdown_plot(result: BacktestResult) -> PngImage:
    return _report_plot(plot_drawdown, result)


def rolling_accuracy_plot(result: BacktestResult) -> PngImage:
    return _report_plot(plot_rolling_accuracy, result)


def calibration_plot(result: BacktestResult) -> PngImage:
    return _report_plot(plot_calibration, result)


def small_sweep(
    run: BacktestRun,
    thresholds: tuple[float, ...] = (0.45, 0.5, 0.55),
    cost_multipliers: tuple[float, ...] = (0.0, 1.0, 2.0),
    lags: tuple[int, ...] = (1, 2),
) -> SweepResult:
    """Thresholds x cost levels x execution lags of the run, in one vectorbt call."""
    grid = SweepGrid(thresholds=thresholds, cost_multipliers=cost_multipliers, lags=lags)
    return run_sweep(
        run.predictions, run.bars, run.config, instrument=run.run["instrument"], grid=grid
    )
