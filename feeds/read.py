"""Point-in-time reads from the store, returned as polars DataFrames.

A read returns bars of ONE source (sources are never mixed silently).  ``as_of`` keeps only bars
whose END instant is at or before it, so a reader at decision time t cannot see bar t+1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb
import polars as pl

from feeds.schema import Frequency

# Real vendors first; the synthetic market only when nothing real is stored.
DEFAULT_SOURCE_PRIORITY: tuple[str, ...] = (
    "wind",
    "eastmoney",
    "tushare",
    "sina",
    "wondertrader",
    "plain",
    "parquet",
    "synthetic",
)

_COLUMNS = (
    "symbol, kind, source, session, ts, open, high, low, close, volume, amount, open_interest"
)


class NoDataError(LookupError):
    """No bars for the requested symbol, frequency or source."""


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


def _window(
    start: date | None, end: date | None, as_of: datetime | None
) -> tuple[str, list[object]]:
    """SQL conditions (and parameters) for a session range and an as-of bar-end cut."""
    conds = [("session >= ?", start), ("session <= ?", end), ("ts <= ?", as_of)]
    kept = [(c, v) for c, v in conds if v is not None]
    return "".join(f" AND {c}" for c, _ in kept), [v for _, v in kept]


def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """``ts`` as UTC whatever the connection's TimeZone setting (DuckDB hands TIMESTAMPTZ to
    polars in the session time zone, e.g. 'Etc/UTC' or 'Asia/Shanghai', which does not compare
    with 'UTC')."""
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC"))


def sources(con: duckdb.DuckDBPyConnection, symbol: str, frequency: str) -> list[str]:
    """Sources that hold bars of ``symbol`` at ``frequency``."""
    if Frequency(frequency) is Frequency.DAILY:
        rows = con.execute(
            "SELECT DISTINCT source FROM bars_daily WHERE symbol = ?", [symbol]
        ).fetchall()
    else:
        rows = con.execute(
            "SELECT DISTINCT source FROM bars_intraday WHERE symbol = ? AND frequency = ?",
            [symbol, frequency],
        ).fetchall()
    return sorted(r[0] for r in rows)


def resolve_source(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    frequency: str,
    priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY,
) -> str:
    """The preferred stored source of ``symbol`` at ``frequency`` (priority order, then name)."""
    have = sources(con, symbol, frequency)
    if not have:
        raise NoDataError(f"no {frequency} bars stored for {symbol}")
    rank = {s: i for i, s in enumerate(priority)}
    return min(have, key=lambda s: (rank.get(s, len(rank)), s))


def daily_bars(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    *,
    start: date | None = None,
    end: date | None = None,
    source: str | None = None,
    as_of: datetime | None = None,
    priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY,
) -> pl.DataFrame:
    """Daily bars of ``symbol`` in ``[start, end]`` (session dates), ascending by session.

    Without ``source``, the first of ``priority`` that holds the symbol (the service passes
    ``store.source_priority`` through ``feeds.store.Store``; the default is for tools and tests).
    """
    _require_aware("as_of", as_of)
    src = source or resolve_source(con, symbol, Frequency.DAILY, priority)
    where, params = _window(start, end, as_of)
    sql = f"SELECT {_COLUMNS} FROM bars_daily WHERE symbol = ? AND source = ?{where}"
    return _utc(con.sql(sql + " ORDER BY session", params=[symbol, src, *params]).pl())


def intraday_bars(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    frequency: str = "1m",
    *,
    start: date | None = None,
    end: date | None = None,
    source: str | None = None,
    as_of: datetime | None = None,
    priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY,
) -> pl.DataFrame:
    """Intraday bars of ``symbol`` for sessions in ``[start, end]``, ascending by bar end.

    With no ``source`` named, 5-minute bars of sessions that only have 1-minute bars stored are
    resampled from them (``feeds.resample.with_resampled``: stored 5-minute sessions win).
    """
    _require_aware("as_of", as_of)
    freq = Frequency(frequency)
    if not freq.intraday:
        raise ValueError("use daily_bars() for daily frequency")
    window = (start, end, as_of)
    if source is None and freq is Frequency.FIVE_MINUTE and sources(con, symbol, Frequency.MINUTE):
        from feeds.resample import with_resampled

        have = sources(con, symbol, freq)
        native = _stored(con, symbol, freq, None, priority, *window) if have else None
        minute = _stored(con, symbol, Frequency.MINUTE, None, priority, *window)
        five = with_resampled(native, minute, 5)
        if as_of is not None:  # a bucket still open at as_of would end after it: drop it
            five = five.filter(pl.col("ts") <= as_of.astimezone(UTC))
        return five
    return _stored(con, symbol, freq, source, priority, *window)


def _stored(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    freq: Frequency,
    source: str | None,
    priority: tuple[str, ...],
    start: date | None,
    end: date | None,
    as_of: datetime | None,
) -> pl.DataFrame:
    """Stored bars of one source (the first of ``priority`` stored by default) at ``freq``."""
    src = source or resolve_source(con, symbol, freq, priority)
    where, params = _window(start, end, as_of)
    sql = (
        f"SELECT {_COLUMNS} FROM bars_intraday "
        f"WHERE symbol = ? AND frequency = ? AND source = ?{where}"
    )
    return _utc(con.sql(sql + " ORDER BY ts", params=[symbol, freq.value, src, *params]).pl())


@dataclass(frozen=True)
class BarReader:
    """A store connection bound to a source priority: every bar read through it picks a symbol's
    source in that order, so a read cannot fall back to another priority by leaving it out.

    Opened by ``feeds.store.Store.read`` / ``Store.write`` with ``store.source_priority``;
    ``con`` stays available for the non-bar tables."""

    con: duckdb.DuckDBPyConnection
    priority: tuple[str, ...]

    def source(self, symbol: str, frequency: str) -> str:
        """The preferred stored source of ``symbol`` at ``frequency``."""
        return resolve_source(self.con, symbol, frequency, self.priority)

    def daily(
        self,
        symbol: str,
        *,
        start: date | None = None,
        end: date | None = None,
        source: str | None = None,
        as_of: datetime | None = None,
    ) -> pl.DataFrame:
        """``daily_bars`` in this reader's priority."""
        return daily_bars(
            self.con,
            symbol,
            start=start,
            end=end,
            source=source,
            as_of=as_of,
            priority=self.priority,
        )

    def intraday(
        self,
        symbol: str,
        frequency: str = "1m",
        *,
        start: date | None = None,
        end: date | None = None,
        source: str | None = None,
        as_of: datetime | None = None,
    ) -> pl.DataFrame:
        """``intraday_bars`` in this reader's priority."""
        return intraday_bars(
            self.con,
            symbol,
            frequency,
            start=start,
            end=end,
            source=source,
            as_of=as_of,
            priority=self.priority,
        )
