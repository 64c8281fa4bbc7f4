"""Backtest runs and their metrics in DuckDB (tables in ``backtest.schema``, created on demand).

- ``backtest_runs``: one row per run: config hash and JSON, data range, model and its version.
- ``backtest_metrics``: long format (run_id, scope, metric, value); scope is ``model``, a
  baseline name, ``trading``, ``buy_and_hold`` or ``year:<YYYY>``.
- ``backtest_sweep``: one row per sweep variant, the configured one marked ``chosen``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import duckdb
import polars as pl

from backtest.schema import BACKTEST_TABLES
from backtest.trading import TRADING_KEYS
from feeds.schema import create_tables


def _metric_rows(run_id: str, doc: dict[str, Any]) -> list[tuple[str, str, str, float | None]]:
    rows: list[tuple[str, str, str, float | None]] = []

    def add(scope: str, values: dict[str, Any]) -> None:
        for k, v in values.items():
            if (isinstance(v, int | float) and not isinstance(v, bool)) or v is None:
                rows.append((run_id, scope, k, None if v is None else float(v)))

    detail = doc["accuracy_detail"]
    add("model", detail["model"])
    for name, b in detail["baselines"].items():
        add(name, {k: v for k, v in b.items() if k != "per_year"})
    add("trading", {k: doc[k] for k in TRADING_KEYS})
    add("buy_and_hold", doc["buy_and_hold"])
    for year, v in detail["per_year"].items():
        add(f"year:{year}", v)
    return rows


def record_run(
    con: duckdb.DuckDBPyConnection,
    doc: dict[str, Any],
    *,
    config_json: str,
    model_version: str,
    source: str | None,
    out_dir: str | None,
    sweep: pl.DataFrame | None = None,
) -> str:
    """Insert one run (from its ``metrics.json`` document) and its metrics; returns run_id."""
    create_tables(con, BACKTEST_TABLES)
    run_id = uuid.uuid4().hex
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO backtest_runs VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                doc["model"],
                model_version,
                doc["symbol"],
                source,
                doc["instrument"],
                doc["config_hash"],
                config_json,
                doc["data_range"]["first_session"],
                doc["data_range"]["last_session"],
                doc["n_sessions"],
                out_dir,
            ],
        )
        con.executemany(
            "INSERT INTO backtest_metrics VALUES (?, ?, ?, ?)", _metric_rows(run_id, doc)
        )
        if sweep is not None:
            s = sweep.with_row_index("variant").select(
                pl.lit(run_id).alias("run_id"),
                "variant",
                "threshold",
                "cost_multiplier",
                "lag",
                "total_return",
                "annual_return",
                "sharpe",
                "max_drawdown",
                "orders",
                "chosen",
            )
            con.register("_sweep", s.to_arrow())
            con.execute("INSERT INTO backtest_sweep SELECT * FROM _sweep")
            con.unregister("_sweep")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return run_id


def config_json(doc: dict[str, Any], backtest_config: dict[str, Any]) -> str:
    """Canonical JSON of the effective configuration stored with a run."""
    return json.dumps(
        {"backtest": backtest_config, "instrument": doc["instrument"]}, sort_keys=True
    )
