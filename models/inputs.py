"""Reading the forecaster's bars from the store (I/O at the edge; features stay pure)."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from feeds.read import DEFAULT_SOURCE_PRIORITY, NoDataError, daily_bars, intraday_bars


def load_daily(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    *,
    source: str | None = None,
    end: date | None = None,
    priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY,
) -> pl.DataFrame:
    """Daily bars of one source (the first of ``priority`` by default), ascending by session."""
    return daily_bars(con, symbol, source=source, end=end, priority=priority)


def load_intraday(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    minutes: int,
    *,
    end: date | None = None,
    priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY,
) -> pl.DataFrame:
    """Intraday bars of ``symbol`` at ``minutes`` length, ascending by bar end.

    For 5-minute tokens, sessions that only have 1-minute bars (e.g. the IF expiry weeks of
    2020-2023) are resampled to 5 minutes and added; sessions of the native 5-minute source win
    (``feeds.read.intraday_bars``).  Empty frame when the store has no intraday bars of ``symbol``.
    """
    try:
        return intraday_bars(con, symbol, f"{minutes}m", end=end, priority=priority)
    except NoDataError:
        return pl.DataFrame()
