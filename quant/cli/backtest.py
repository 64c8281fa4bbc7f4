"""``quant backtest``: accuracy and trading backtest of P(up) predictions (index as proxy)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import click
import polars as pl

from backtest.config import BacktestConfig
from backtest.costs import INSTRUMENTS
from backtest.inputs import (
    BacktestInputError,
    persistence_predictions,
    read_predictions,
    select_model,
)
from backtest.report import write_report
from backtest.run import run_backtest
from backtest.runs import config_json, record_run
from backtest.sweep import run_sweep
from feeds.read import NoDataError
from quant.cli._context import AppContext, config_default, pass_app

HEADLINE = (
    "n_sessions",
    "accuracy",
    "ci_low",
    "ci_high",
    "p_value",
    "total_return",
    "annual_return",
    "sharpe",
    "max_drawdown",
    "trades",
    "costs_paid",
    "buy_and_hold_return",
)


def _effective_config(base: BacktestConfig, overrides: dict[str, Any]) -> BacktestConfig:
    doc = base.model_dump()
    for section, values in overrides.items():
        doc[section] = {**doc[section], **{k: v for k, v in values.items() if v is not None}}
    return BacktestConfig.model_validate(doc)


def _load_predictions(
    con: Any, path: Path | None, predictor: str | None, table: str, bars: pl.DataFrame
) -> tuple[pl.DataFrame, str | None]:
    """Predictions and a version tag: a file, the persistence rule, or a store table."""
    if path is not None:
        return read_predictions(path), "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[
            :16
        ]
    if predictor == "persistence":
        return persistence_predictions(bars), "rule:persistence"
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    if table not in tables:
        raise click.UsageError(
            "no predictions: give --predictions FILE, --predictor persistence, "
            f"or a store table {table!r}"
        )
    return con.sql(f'SELECT * FROM "{table}"').pl(), None


def register(group: click.Group) -> None:
    @group.command("backtest")
    @click.option("--symbol", default=None, help=config_default("data.symbol", "Index symbol"))
    @click.option(
        "--source",
        default=None,
        help="Bar source (default: config store.source_priority, the first that holds it).",
    )
    @click.option(
        "--predictions",
        "predictions_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Predictions parquet/csv in the layout `quant evaluate` writes.",
    )
    @click.option(
        "--predictor",
        type=click.Choice(["persistence"]),
        help="Generate predictions with a rule instead of reading them.",
    )
    @click.option(
        "--predictions-table",
        default="predictions",
        show_default=True,
        help="Store table read without --predictions or --predictor.",
    )
    @click.option("--model", default=None, help="Model to backtest (required if several).")
    @click.option("--model-version", default=None, help="Recorded with the run.")
    @click.option(
        "--instrument",
        type=click.Choice(INSTRUMENTS),
        default=None,
        help=config_default("backtest.instrument", "Cost profile"),
    )
    @click.option(
        "--execution",
        type=click.Choice(["next_open", "next_close"]),
        default=None,
        help=config_default("backtest.execution.price", "Fill price"),
    )
    @click.option(
        "--lag",
        type=int,
        default=None,
        help=config_default("backtest.execution.lag", "Sessions from signal to fill (>= 1)"),
    )
    @click.option(
        "--hold",
        type=click.Choice(["carry", "intraday"]),
        default=None,
        help=config_default("backtest.execution.hold"),
    )
    @click.option(
        "--rule",
        type=click.Choice(["long_flat", "long_short"]),
        default=None,
        help=config_default("backtest.rule.mode"),
    )
    @click.option(
        "--long-above", type=float, default=None, help=config_default("backtest.rule.long_above")
    )
    @click.option(
        "--short-below", type=float, default=None, help=config_default("backtest.rule.short_below")
    )
    @click.option(
        "--sizing",
        type=click.Choice(["fixed", "confidence"]),
        default=None,
        help=config_default("backtest.rule.sizing"),
    )
    @click.option("--sweep/--no-sweep", default=True, show_default=True)
    @click.option(
        "--record/--no-record",
        default=True,
        show_default=True,
        help="Write the run and its metrics to the store's backtest tables.",
    )
    @click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=config_default("backtest.out_dir", "Report folder"),
    )
    @pass_app
    def backtest(
        app: AppContext,
        symbol: str | None,
        source: str | None,
        predictions_path: Path | None,
        predictor: str | None,
        predictions_table: str,
        model: str | None,
        model_version: str | None,
        instrument: str | None,
        execution: str | None,
        lag: int | None,
        hold: str | None,
        rule: str | None,
        long_above: float | None,
        short_below: float | None,
        sizing: str | None,
        sweep: bool,
        record: bool,
        out: Path | None,
    ) -> None:
        """Backtest P(up) predictions: accuracy report, trading figures, HTML/PNG/JSON, DuckDB."""
        try:
            cfg = _effective_config(
                app.config.backtest,
                {
                    "execution": {"price": execution, "lag": lag, "hold": hold},
                    "rule": {
                        "mode": rule,
                        "long_above": long_above,
                        "short_below": short_below,
                        "sizing": sizing,
                    },
                },
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        sym = symbol or app.config.data.symbol
        out_dir = out or cfg.out_dir
        opened = app.write("quant backtest --record") if record else app.read()
        with opened as db:
            con = db.con
            try:
                bars = db.daily(sym, source=source)
                preds, version = _load_predictions(
                    con, predictions_path, predictor, predictions_table, bars
                )
                preds = select_model(preds, model)
                if "model_version" in preds.columns:
                    version = str(preds["model_version"][0])
                result = run_backtest(preds, bars, cfg, instrument=instrument)
                swept = run_sweep(preds, bars, cfg, instrument=instrument) if sweep else None
                doc = write_report(result, out_dir, swept, symbol=sym)
                if record:
                    run_id = record_run(
                        con,
                        doc,
                        config_json=config_json(doc, cfg.model_dump(mode="json")),
                        model_version=model_version or version or "unknown",
                        source=str(bars["source"][0]),
                        out_dir=str(out_dir),
                        sweep=swept.table if swept else None,
                    )
                    app.publish(con)
                    click.echo(f"recorded run {run_id} in backtest_runs", err=True)
            except (BacktestInputError, NoDataError) as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"wrote {out_dir / 'report.html'}, {out_dir / 'metrics.json'} and PNG plots")
        click.echo(result.proxy_note)
        click.echo(json.dumps({k: doc[k] for k in HEADLINE} | {"baselines": doc["baselines"]}))
