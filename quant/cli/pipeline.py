"""Pipeline subcommands: run-daily, finetune, schedule, replay.

Every writer takes the store lock (``feeds.lock``) first: a second writer, or a command started
while the scheduler runs, fails with the holder's pid instead of racing for DuckDB's write lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import click
import duckdb
import torch

from feeds.calendar import EXCHANGE_TZ
from feeds.lock import LockHeldError
from feeds.schema import create_tables
from feeds.snapshot import publish_snapshot
from feeds.store import StoreError, open_store, transaction
from quant.cli._context import AppContext, config_default, parse_date, pass_app
from quant.config import models_dir
from quant.pipeline import run_daily, warm_up_torch
from quant.pipeline_steps import RunState, StepError, step_finetune, step_gate
from quant.replay_report import ARMS
from quant.schema import PIPELINE_TABLES


@contextmanager
def locked_store(app: AppContext, purpose: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store opened for writing under its exclusive lock."""
    try:
        with app.writer(purpose) as con:
            yield con
    except (LockHeldError, StoreError) as exc:
        raise click.ClickException(str(exc)) from exc


def _today() -> date:
    return datetime.now(EXCHANGE_TZ).date()


@click.command("run-daily")
@click.option("--date", "run_date", callback=parse_date, help="Session (default: today, Shanghai).")
@click.option("--symbol", default=None, help=config_default("data.symbol"))
@click.option(
    "--budget",
    type=float,
    default=None,
    help=config_default("pipeline.finetune.budget_s", "Fine-tune seconds"),
)
@click.option("--no-ingest", is_flag=True, help="Skip landing files (bars already stored).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@pass_app
def run_daily_cmd(
    app: AppContext,
    run_date: date | None,
    symbol: str | None,
    budget: float | None,
    no_ingest: bool,
    as_json: bool,
) -> None:
    """Ingest, fine-tune, gate, signal, backtest and report for one session (idempotent)."""
    d = run_date or _today()
    with locked_store(app, f"quant run-daily {d}") as con:
        r = run_daily(
            con,
            app.config,
            d,
            symbol=symbol,
            budget_s=budget,
            ingest=not no_ingest,
            store_path=app.config.store.path,
        )
    if as_json:
        click.echo(json.dumps(r.__dict__, indent=2, default=str))
    elif r.status == "skipped":
        click.echo(f"{d} is not an XSHG trading day: nothing to do")
    elif r.status not in ("waiting_for_data", "late", "held", "beyond_horizon"):
        click.echo(f"{r.status}: {r.headline or r.error}")
    if r.status == "failed":
        raise click.ClickException(f"run {d} failed ({r.error}); the next run resumes there")
    if r.status in ("waiting_for_data", "late", "held", "beyond_horizon"):
        raise click.ClickException(f"run {d} {r.status}; no signal published ({r.error})")


@click.command("finetune")
@click.option("--date", "run_date", callback=parse_date, help="As-of session (default: today).")
@click.option("--symbol", default=None, help=config_default("data.symbol"))
@click.option(
    "--budget",
    type=float,
    default=None,
    help=config_default("pipeline.finetune.budget_s", "Seconds"),
)
@pass_app
def finetune_cmd(
    app: AppContext, run_date: date | None, symbol: str | None, budget: float | None
) -> None:
    """Fine-tune the champion on data up to DATE, then gate the challenger (outside a run)."""
    cfg = app.config
    d = run_date or _today()
    b = budget if budget is not None else cfg.pipeline.finetune.budget_s
    torch.set_num_threads(cfg.pipeline.threads)
    warm_up_torch()  # outside the budget, as in run_daily
    with locked_store(app, f"quant finetune {d}") as con:
        create_tables(con, PIPELINE_TABLES)
        st = RunState(con, cfg, models_dir(cfg), d, symbol or cfg.data.symbol, b)
        try:
            for name, step in (("finetune", step_finetune), ("gate", step_gate)):
                detail, writes = step(st)
                st.details[name] = detail
                with transaction(con):
                    if writes is not None:
                        writes(con)
        except StepError as exc:
            raise click.ClickException(str(exc)) from exc
        publish_snapshot(con, cfg.store.path)
    ft, g = st.details["finetune"], st.details["gate"]
    click.echo(
        f"challenger {ft['challenger']} ({ft['kind']}): {ft['seconds']:.1f}s of {b:.0f}s, "
        f"{ft['samples_per_s']:.0f} samples/s, trained {ft['train_start']}..{ft['train_end']}"
    )
    click.echo(g["reason"])


@click.command("schedule")
@click.option("--symbol", default=None, help=config_default("data.symbol"))
@pass_app
def schedule_cmd(app: AppContext, symbol: str | None) -> None:
    """Run the daily pipeline after the close on XSHG trading days until SIGTERM/Ctrl-C."""
    from quant.scheduler import serve

    try:
        serve(app.config, symbol=symbol)
    except LockHeldError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("replay")
@click.option("--symbol", default=None, help=config_default("data.symbol"))
@click.option("--from", "start", callback=parse_date, required=True, help="First session D1.")
@click.option("--to", "end", callback=parse_date, required=True, help="Last session D2.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help=config_default(
        "pipeline.finetune.max_steps",
        "Fine-tune work budget: optimiser steps per member per day",
    ),
)
@click.option(
    "--budget",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=config_default("pipeline.finetune.budget_s", "Wall-clock cap per fine-tune in seconds"),
)
@click.option(
    "--arms",
    default=",".join(ARMS),
    show_default=True,
    help="Comparison arms (continual and frozen always run).",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@pass_app
def replay_cmd(
    app: AppContext,
    symbol: str | None,
    start: date,
    end: date,
    steps: int | None,
    budget: float | None,
    arms: str,
    out: Path,
) -> None:
    """Replay the pipeline day by day over [FROM, TO]; writes OUT/replay.json and replay.md.

    Started again with the same settings and OUT, an interrupted replay resumes where it stopped.
    """
    from quant.replay import ReplayError, ReplayOptions, markdown, run_replay

    chosen = tuple(a.strip() for a in arms.split(",") if a.strip())
    o = ReplayOptions(symbol or app.config.data.symbol, start, end, out, steps, budget, arms=chosen)
    try:
        doc = run_replay(app.config.store.path, app.config, o)
    except (LockHeldError, ReplayError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(markdown(doc))


@click.command("finetune-search")
@click.option("--symbol", default=None, help=config_default("data.symbol"))
@click.option("--from", "start", callback=parse_date, required=True, help="First session.")
@click.option("--to", "end", callback=parse_date, required=True, help="Last session.")
@click.option("--every", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--candidates", default=None, help="Comma-separated subset (default: all).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@pass_app
def finetune_search_cmd(
    app: AppContext,
    symbol: str | None,
    start: date,
    end: date,
    every: int,
    candidates: str | None,
    out: Path,
) -> None:
    """Score the fine-tune candidates on [FROM, TO] (keep it before the replay's span); writes
    OUT/finetune_search.json and .md.  Reads a copy-free view of the store (read-only)."""
    from quant.finetune_search import SPACE, markdown, search

    chosen = tuple(c.strip() for c in candidates.split(",")) if candidates else tuple(SPACE)
    torch.set_num_threads(app.config.pipeline.threads)
    warm_up_torch()
    try:
        con = open_store(app.config.store.path, read_only=True)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        sym = symbol or app.config.data.symbol
        doc = search(con, app.config, sym, start, end, every=every, candidates=chosen)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        con.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "finetune_search.json").write_text(json.dumps(doc, indent=2, default=str))
    (out / "finetune_search.md").write_text(markdown(doc))
    click.echo(markdown(doc))


def register(group: click.Group) -> None:
    for cmd in (run_daily_cmd, finetune_cmd, schedule_cmd, replay_cmd, finetune_search_cmd):
        group.add_command(cmd)
