"""Published trading signals: immutable, versioned rows (a re-run adds a version, never edits).

A signal is the forecast for ``session`` (the next XSHG session) made at the close of
``decision_session`` from bars whose last one ended at ``last_bar_ts``.  ``next_signal`` /
``publish_next_signal`` make and publish one from ``quant.market_data.MarketData`` and a
forecaster: the pipeline's signal step, ``quant predict`` and the API demo all go through them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from feeds.calendar import CalendarHorizonError, next_trading_day
from feeds.schema import create_tables
from models.metrics import confidence, direction
from quant.schema import SIGNALS

if TYPE_CHECKING:
    from models.forecaster import Forecast, Forecaster
    from quant.market_data import MarketData


@dataclass(frozen=True)
class Signal:
    symbol: str
    session: date
    version: int
    decision_session: date
    p_up: float
    direction: str
    confidence: float
    model_version: str
    last_bar_ts: datetime
    generated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("session", "decision_session", "last_bar_ts", "generated_at"):
            d[k] = d[k].isoformat()
        return d


def publish_signal(
    con: duckdb.DuckDBPyConnection,
    *,
    symbol: str,
    session: date,
    decision_session: date,
    p_up: float,
    model_version: str,
    last_bar_ts: datetime,
    generated_at: datetime | None = None,
) -> Signal:
    """Append a new version of the signal for (symbol, session) and return it."""
    if not 0.0 <= p_up <= 1.0:
        raise ValueError(f"p_up {p_up} outside [0, 1]")
    if last_bar_ts.tzinfo is None:
        raise ValueError("last_bar_ts must be timezone-aware")
    if session <= decision_session:
        raise ValueError(
            f"signal session {session} must follow decision session {decision_session}"
        )
    create_tables(con, (SIGNALS,))
    version = con.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM signals WHERE symbol = ? AND session = ?",
        [symbol, session],
    ).fetchall()[0][0]
    sig = Signal(
        symbol=symbol,
        session=session,
        version=int(version),
        decision_session=decision_session,
        p_up=float(p_up),
        direction=direction(p_up),
        confidence=confidence(p_up),
        model_version=model_version,
        last_bar_ts=last_bar_ts.astimezone(UTC),
        generated_at=(generated_at or datetime.now(UTC)).astimezone(UTC),
    )
    con.execute(
        "INSERT INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            sig.symbol,
            sig.session,
            sig.version,
            sig.decision_session,
            sig.p_up,
            sig.direction,
            sig.confidence,
            sig.model_version,
            sig.last_bar_ts,
            sig.generated_at,
        ],
    ).fetchall()
    return sig


@dataclass(frozen=True)
class NextSignal:
    """A forecast for the session after ``decision_session``, made and not yet published."""

    symbol: str
    session: date  # the next XSHG session
    decision_session: date
    forecast: Forecast
    model_version: str
    last_bar_ts: datetime  # end of the decision session's daily bar (UTC)

    def publish(self, con: duckdb.DuckDBPyConnection) -> Signal:
        """Append it as a new version of the (symbol, session) signal."""
        return publish_signal(
            con,
            symbol=self.symbol,
            session=self.session,
            decision_session=self.decision_session,
            p_up=self.forecast.p_up,
            model_version=self.model_version,
            last_bar_ts=self.last_bar_ts,
        )


def next_signal(
    data: MarketData, fc: Forecaster, model_version: str, *, session: date | None = None
) -> NextSignal:
    """The forecast of ``fc`` at the close of ``session`` (default ``data.as_of``) for the next
    session, from the bars of ``data`` up to ``session`` (the tail its window needs).

    ``CalendarHorizonError`` (naming the forecast) when the next session is past the calendar's
    horizon; ``FeatureError`` when the bars cannot make a window for ``session``."""
    t = session or data.as_of
    daily, intraday = data.upto(t, fc.spec.warmup + fc.spec.intraday_sessions + 5)
    f = fc.predict(daily, intraday, session=t)
    try:
        nxt = next_trading_day(t)
    except CalendarHorizonError as exc:
        raise CalendarHorizonError(
            f"p_up {f.p_up:.4f} from {t}, but the next session is unknown: {exc}; "
            "no signal published"
        ) from exc
    return NextSignal(data.symbol, nxt, t, f, model_version, data.bar_end(t))


def publish_next_signal(
    con: duckdb.DuckDBPyConnection,
    data: MarketData,
    fc: Forecaster,
    model_version: str,
    *,
    session: date | None = None,
) -> Signal:
    """Forecast the session after ``session`` with ``fc`` and publish it (``next_signal``): what
    the pipeline's signal step, ``quant predict`` and the API demo publish."""
    return next_signal(data, fc, model_version, session=session).publish(con)


_COLS = (
    "symbol, session, version, decision_session, p_up, direction, confidence, model_version, "
    "last_bar_ts, generated_at"
)


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'signals'"
        ).fetchall()[0][0]
    )


def latest_signal(con: duckdb.DuckDBPyConnection, symbol: str) -> Signal | None:
    """The newest version of the signal for the latest session of ``symbol``."""
    if not _has_table(con):
        return None
    rows = con.execute(
        f"SELECT {_COLS} FROM signals WHERE symbol = ? ORDER BY session DESC, version DESC LIMIT 1",
        [symbol],
    ).fetchall()
    return Signal(*rows[0]) if rows else None


def signals_between(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    start: date | None = None,
    end: date | None = None,
    *,
    all_versions: bool = False,
) -> list[Signal]:
    """Signals for sessions in ``[start, end]``; the newest version of each unless asked."""
    if not _has_table(con):
        return []
    sql = f"SELECT {_COLS} FROM signals WHERE symbol = ?"
    params: list[object] = [symbol]
    if start is not None:
        sql += " AND session >= ?"
        params.append(start)
    if end is not None:
        sql += " AND session <= ?"
        params.append(end)
    if not all_versions:
        sql += " QUALIFY version = max(version) OVER (PARTITION BY symbol, session)"
    rows = con.execute(sql + " ORDER BY session, version", params).fetchall()
    return [Signal(*r) for r in rows]
