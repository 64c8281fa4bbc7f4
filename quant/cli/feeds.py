"""``quant feeds``: what the daily job's feeds and checks are doing, and releasing held bars."""

from __future__ import annotations

import getpass
import json
from datetime import date, datetime

import click

from feeds.calendar import EXCHANGE_TZ, horizon, horizon_warning
from feeds.schema import create_tables
from quant import live_checks
from quant.cli._context import AppContext, config_default, parse_date, pass_app
from quant.cli.pipeline import locked_store
from quant.pipeline import stale_runs
from quant.schema import PIPELINE_TABLES
from quant.settings_feeds import InboxFeed


@click.group("feeds")
def feeds_group() -> None:
    """Configured feeds, late and held days, the calendar horizon; release a held bar."""


@feeds_group.command("status")
@click.option("--symbol", default=None, help=config_default("data.symbol"))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status_cmd(app: AppContext, symbol: str | None, as_json: bool) -> None:
    """Feeds, late / held / waiting run dates, open holds and the calendar horizon."""
    cfg = app.config
    sym = symbol or cfg.data.symbol
    with app.connect() as con:
        create_tables(con, PIPELINE_TABLES)
        runs = stale_runs(con, sym)
        holds = live_checks.open_holds(con)
    today = datetime.now(EXCHANGE_TZ).date()
    names = [f.name if isinstance(f, InboxFeed) else f.label for f in cfg.feeds]
    doc = {
        "feeds": [{"kind": f.kind, "name": n} for f, n in zip(cfg.feeds, names, strict=True)],
        "runs_not_done": [{"run_date": d, "status": s, "error": e} for d, s, e in runs],
        "holds": holds,
        "calendar_horizon": horizon(),
        "calendar_warning": horizon_warning(today, cfg.calendar.warn_days),
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    click.echo(f"feeds: {', '.join(names) or 'none configured'}")
    for d, s, e in runs:
        click.echo(f"{sym} {d}: {s}  {e}")
    for h in holds:
        click.echo(f"held {h['symbol']} {h['session']} ({h['source']}): {'; '.join(h['problems'])}")
    click.echo(f"calendar horizon: {doc['calendar_horizon']}")
    if doc["calendar_warning"]:
        click.echo(f"WARNING: {doc['calendar_warning']}")


@feeds_group.command("release")
@click.option("--date", "session", callback=parse_date, required=True, help="Held session.")
@click.option("--symbol", default=None, help=config_default("data.symbol"))
@click.option("--by", default=None, help="Reviewer (default: the login name).")
@pass_app
def release_cmd(app: AppContext, session: date, symbol: str | None, by: str | None) -> None:
    """Release a bar held by the live checks after review; the next run forecasts on it."""
    sym = symbol or app.config.data.symbol
    with locked_store(app, f"quant feeds release {session}") as con:
        ok = live_checks.release(con, sym, session, by or getpass.getuser())
    if not ok:
        raise click.ClickException(f"no open hold for {sym} {session}")
    click.echo(f"released {sym} {session}; the next run (or quant run-daily --date) proceeds")


def register(group: click.Group) -> None:
    group.add_command(feeds_group)
