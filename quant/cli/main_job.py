"""``quant main``: the service's main job end to end on the configured store.

Ingest the synthetic market (under its own symbol, SYN300.SIM) and the real files, make sure a
champion exists (a first model is trained from scratch when the registry is empty), run one daily
pipeline for the latest stored session of the real symbol (the synthetic one when no real bars
are stored), publish the snapshot and print the report's headline.
"""

from __future__ import annotations

import time
from datetime import date

import click
import duckdb

from feeds.read import NoDataError, daily_bars, resolve_source
from feeds.schema import create_tables
from feeds.stats import store_stats
from feeds.store import open_store
from models.sizes import daily_bars_needed
from quant import registry
from quant.cli._context import AppContext, config_default, pass_app
from quant.cli.data import _print_report, _stats_table, ingest_paths, ingest_synthetic_default
from quant.config import QuantConfig
from quant.pipeline import get_run, run_daily
from quant.schema import PIPELINE_TABLES


def _ingest(app: AppContext, no_real: bool) -> None:
    _print_report(ingest_synthetic_default(app))
    real = app.config.data.real_data_dir
    if no_real:
        click.echo("real data: skipped (--no-real)")
    elif real.is_dir():
        if ingest_paths(app, [real], None, None):
            raise click.ClickException(f"some files under {real} could not be ingested")
    else:
        click.echo(f"real data: {real} not found; the store holds the synthetic market only")


def _forecast_symbol(con: duckdb.DuckDBPyConnection, cfg: QuantConfig) -> tuple[str, str] | None:
    """(symbol, its preferred daily source): the real symbol when it has bars, else the demo's
    synthetic one.  Never a real symbol from synthetic bars (they do not share a symbol)."""
    for sym in (cfg.data.symbol, cfg.data.synthetic_symbol):
        try:
            return sym, resolve_source(con, sym, "1d", cfg.store.source_priority)
        except NoDataError:
            continue
    return None


def _pipeline(app: AppContext, budget: float | None) -> None:
    cfg = app.config
    p = cfg.pipeline
    con = open_store(cfg.store.path)
    try:
        got = _forecast_symbol(con, cfg)
        if got is None:
            click.echo(f"pipeline: skipped, no daily bars of {cfg.data.symbol}")
            return
        sym, src = got
        if sym != cfg.data.symbol:
            click.echo(
                f"\nno real bars of {cfg.data.symbol}: forecasting the SYNTHETIC market {sym} "
                "(a demo; its numbers say nothing about the index)"
            )
        bars = daily_bars(con, sym, source=src)
        sessions: list[date] = bars["session"].to_list()
        first, latest = sessions[0], sessions[-1]
        kind = "SYNTHETIC" if src == "synthetic" else "REAL"
        click.echo(
            f"\ndata: {sym} daily bars from '{src}' ({kind}), {bars.height} sessions "
            f"{first}..{latest}"
        )
        need = daily_bars_needed(
            cfg.forecast.features.warmup, max(p.initial.holdout_sessions, p.gate.window_sessions)
        )
        if bars.height < need:
            click.echo(
                f"pipeline: skipped, {bars.height} sessions of '{src}' are too few to train a "
                f"first model (need about {need})"
            )
            return
        create_tables(con, PIPELINE_TABLES)
        prior = get_run(con, sym, latest)
        if prior is not None and prior["status"] == "done":
            click.echo(f"the pipeline for {latest} already ran; its report:")
        elif registry.champion(con) is None:
            click.echo(
                "registry empty: training a first model from scratch (the walk-forward's block "
                f"fit; the newest {p.initial.holdout_sessions} labelled "
                "sessions are held out, so the report below is out of sample)"
            )
        else:
            cap = budget if budget is not None else p.finetune.budget_s
            click.echo(f"fine-tuning the champion for at most {cap:.0f}s")
        t0 = time.perf_counter()
        r = run_daily(
            con, cfg, latest, symbol=sym, budget_s=budget, ingest=False, store_path=cfg.store.path
        )
    finally:
        con.close()
    timings = ", ".join(f"{k} {v.get('seconds', 0):.1f}s" for k, v in r.steps.items())
    click.echo(f"pipeline {latest}: {r.status} in {time.perf_counter() - t0:.1f}s ({timings})")
    if r.status == "failed":
        raise click.ClickException(f"pipeline failed: {r.error}")
    click.echo(f"\n{r.headline}")


@click.command("main")
@click.option("--no-real", is_flag=True, help="Skip the real vendor files even when present.")
@click.option(
    "--budget",
    type=float,
    default=None,
    help=config_default("pipeline.finetune.budget_s", "Fine-tune seconds for this run"),
)
@pass_app
def main_job(app: AppContext, no_real: bool, budget: float | None) -> None:
    """Ingest the SYNTHETIC market and the real files, run one daily pipeline, print its report.

    The real files are read in place from ``data.real_data_dir`` (default ../shared/data/real)
    when that directory exists.  With real bars of data.symbol the forecast is made from them;
    without, the synthetic market (its own symbol, data.synthetic_symbol) is forecast and the
    output says so.
    """
    click.echo(f"store: {app.config.store.path}")
    with app.lock("quant main"):
        _ingest(app, no_real)
        _pipeline(app, budget)
    with app.connect(read_only=True) as con:
        click.echo("\nstore summary (rows per symbol, frequency and source):")
        click.echo(_stats_table(store_stats(con)))


def register(group: click.Group) -> None:
    group.add_command(main_job)
