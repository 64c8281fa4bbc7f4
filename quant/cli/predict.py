"""``quant predict``: the next-session signal from the store with the champion, published.

Appends a new version of the signal (never overwrites) and publishes a snapshot so a running
API serves it within ``api.reload_poll_s``.  The daily pipeline does the same after its other
steps; this command serves before (or without) the scheduler.
"""

from __future__ import annotations

import json
from datetime import date

import click

from feeds.calendar import CalendarHorizonError
from feeds.read import NoDataError
from feeds.snapshot import publish_snapshot
from models.features import FeatureError
from quant import registry
from quant.cli._context import AppContext, config_default, parse_date, pass_app
from quant.config import models_dir
from quant.market_data import MarketData
from quant.signals import publish_next_signal


@click.command("predict")
@click.option("--symbol", default=None, help=config_default("data.symbol", "Daily index"))
@click.option(
    "--session",
    callback=parse_date,
    default=None,
    help="Decision session (default: the last stored).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the signal as JSON.")
@pass_app
def predict(app: AppContext, symbol: str | None, session: date | None, as_json: bool) -> None:
    """Forecast the session after SESSION with the champion; publish signal and snapshot."""
    cfg = app.config
    sym = symbol or cfg.data.symbol
    mdir = models_dir(cfg)
    with app.writer(f"quant predict {sym}") as con:
        if registry.champion(con) is None:
            raise click.ClickException("no champion model registered; run the pipeline first")
        version, fc = registry.load_champion(con, mdir)
        try:
            data = MarketData.load(
                con,
                cfg,
                session,
                symbol=sym,
                intraday_symbol=cfg.data.intraday_symbol,
                features=fc.spec,  # the champion's bar length, whatever the config says now
            )
        except NoDataError as exc:
            raise click.ClickException(str(exc)) from exc
        try:
            sig = publish_next_signal(con, data, fc, version.version_id)
        except FeatureError as exc:
            raise click.ClickException(f"cannot forecast from {data.as_of}: {exc}") from exc
        except CalendarHorizonError as exc:
            raise click.ClickException(str(exc)) from exc
        publish_snapshot(con, cfg.store.path)
    if as_json:
        click.echo(json.dumps(sig.as_dict(), indent=2))
    else:
        click.echo(
            f"{sig.symbol} {sig.session} v{sig.version}: p_up {sig.p_up:.4f} {sig.direction} "
            f"(model {sig.model_version}, decided at the close of {sig.decision_session})"
        )


def register(group: click.Group) -> None:
    group.add_command(predict)
