"""``quant predict``: the next-session signal from the store with the champion, published.

Appends a new version of the signal (never overwrites) and publishes a snapshot so a running
API serves it within ``api.reload_poll_s``.  The daily pipeline does the same after its other
steps; this command serves before (or without) the scheduler.
"""

from __future__ import annotations

import json
from datetime import date

import click

from feeds.calendar import CalendarHorizonError, next_trading_day
from feeds.read import NoDataError, daily_bars
from feeds.snapshot import publish_snapshot
from models.features import FeatureError
from models.inputs import load_intraday
from quant import registry
from quant.cli._context import AppContext, config_default, parse_date, pass_app
from quant.config import models_dir
from quant.signals import publish_signal


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
            daily = daily_bars(con, sym, end=session, priority=cfg.store.source_priority)
        except NoDataError as exc:
            raise click.ClickException(str(exc)) from exc
        t = session or daily.get_column("session").max()
        assert isinstance(t, date)
        intra = load_intraday(
            con,
            cfg.data.intraday_symbol,
            fc.spec.intraday_minutes,
            end=t,
            priority=cfg.store.source_priority,
        )
        try:
            f = fc.predict(daily, None if intra.is_empty() else intra, session=t)
        except FeatureError as exc:
            raise click.ClickException(f"cannot forecast from {t}: {exc}") from exc
        last_ts = daily.filter(daily["session"] == t).get_column("ts")[0]
        try:
            nxt = next_trading_day(t)
        except CalendarHorizonError as exc:
            raise click.ClickException(
                f"p_up {f.p_up:.4f} from {t}, but the next session is unknown: {exc}; "
                "no signal published"
            ) from exc
        sig = publish_signal(
            con,
            symbol=sym,
            session=nxt,
            decision_session=t,
            p_up=f.p_up,
            model_version=version.version_id,
            last_bar_ts=last_ts,
        )
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
