"""Missing-bar accounting of what an ingest touched: ``session_gaps`` rows per series session.

Intraday: expected bars (the session grid of the bar's kind) against present ones, with the
first missing bar's end.  Daily: the XSHG sessions without a stored bar inside each series'
span (such a session breaks the label of the session before it, ``models.labels``).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import duckdb
import polars as pl

from feeds.calendar import Segment, intraday_grid, session_segments, trading_days
from feeds.schema import InstrumentKind
from feeds.writer import distinct, stored_intraday


@lru_cache(maxsize=64)
def _expected_bars(kind: InstrumentKind, segments: tuple[Segment, ...], minutes: int) -> int:
    return sum(
        ((end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)) // minutes
        for start, end in segments
    )


def record_session_gaps(
    con: duckdb.DuckDBPyConnection, bars: pl.DataFrame, *, fresh: bool = False
) -> int:
    """Recount expected vs present bars for every (symbol, frequency, source, session) touched.

    ``bars`` have just been written, so each of them is stored; when the store holds no other
    row of their series in their sessions (``fresh``: the writer found none before the write;
    else one count answers it), they are what is present and are counted in polars.  Returns
    the number of touched sessions with missing bars.
    """
    if bars.is_empty():
        return 0
    series = ["symbol", "frequency", "source", "session"]
    names = ["symbol", "kind", "frequency", "source"]
    one = distinct(bars, names)
    if one.height == 1:  # one series: group by session alone
        per_session = bars.group_by("session").agg(pl.len().cast(pl.Int64).alias("present"))
        touched = per_session.select(*(pl.lit(one[c][0]).alias(c) for c in names), "session")
    else:
        per_session = None
        touched = bars.select(*names, "session").unique()
    # the batch is what is present when the store holds nothing else of its series there
    counts = None if fresh else _stored_counts(con, bars.height, touched)
    if counts is None and per_session is not None:
        counts = touched.with_columns(per_session["present"]).rows()
    elif counts is None:
        present = bars.group_by(series).agg(pl.len().cast(pl.Int64).alias("present"))
        counts = touched.join(present, on=series).select(*names, "session", "present").rows()
    rows = []
    for symbol, kind, freq, source, session, n_present in counts:
        minutes = int(freq.rstrip("m"))
        ik = InstrumentKind(kind)
        expected = _expected_bars(ik, session_segments(ik, session), minutes)
        missing = max(expected - n_present, 0)
        first_missing = None
        if missing:
            grid = intraday_grid(InstrumentKind(kind), session, minutes)
            stored, params = stored_intraday(con, [symbol])
            have = {
                r[0]
                for r in con.execute(
                    f"SELECT ts FROM {stored} s WHERE frequency = ? AND source = ? AND session = ?",
                    [*params, freq, source, session],
                ).fetchall()
            }
            first_missing = next((g for g in grid if g not in have), None)
        rows.append((symbol, freq, source, session, expected, n_present, missing, first_missing))
    gaps = pl.DataFrame(
        rows,
        schema={
            "symbol": pl.String,
            "frequency": pl.String,
            "source": pl.String,
            "session": pl.Date,
            "expected": pl.Int32,
            "present": pl.Int32,
            "missing": pl.Int32,
            "first_missing": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    con.register("_gaps", gaps.to_arrow())
    con.execute("INSERT OR REPLACE INTO session_gaps SELECT * FROM _gaps").fetchall()
    con.unregister("_gaps")
    return sum(1 for r in rows if r[6] > 0)


def _stored_counts(
    con: duckdb.DuckDBPyConnection, n_batch: int, touched: pl.DataFrame
) -> list[tuple[Any, ...]] | None:
    """Stored bars per touched (symbol, kind, frequency, source, session); None when the store
    holds only the batch's ``n_batch`` rows there (one count answers it)."""
    # the touched series and span as constants, so DuckDB's zone maps skip other row groups
    stored, params = stored_intraday(con, touched["symbol"].unique().to_list())
    span = [touched["session"].min(), touched["session"].max()]
    con.register("_touched", touched.to_arrow())
    try:
        (n_stored,) = con.execute(
            f"SELECT count(*) FROM {stored} s SEMI JOIN _touched t "
            "USING (symbol, frequency, source) WHERE s.session BETWEEN ? AND ?",
            [*params, *span],
        ).fetchall()[0]
        if n_stored == n_batch:
            return None
        return con.execute(
            "SELECT symbol, t.kind, frequency, source, session, count(*) AS present "
            f"FROM (SELECT symbol, frequency, source, session FROM {stored} s "
            "WHERE session BETWEEN ? AND ?) b "
            "JOIN _touched t USING (symbol, frequency, source, session) GROUP BY ALL",
            [*params, *span],
        ).fetchall()
    finally:
        con.unregister("_touched")


def record_daily_gaps(con: duckdb.DuckDBPyConnection, bars: pl.DataFrame) -> tuple[date, ...]:
    """Record the XSHG sessions without a stored daily bar inside each touched series' span.

    For every (symbol, source) in ``bars`` the stored span first..last session is compared with
    the calendar; its ``session_gaps`` rows (frequency '1d', expected 1, present 0) are replaced.
    Such a session breaks the label of the session before it (``models.labels``).  Returns the
    missing sessions, ascending.
    """
    if bars.is_empty():
        return ()
    missing_all: set[date] = set()
    for symbol, source in bars.select("symbol", "source").unique().iter_rows():
        have = {
            r[0]
            for r in con.execute(
                "SELECT session FROM bars_daily WHERE symbol = ? AND source = ?", [symbol, source]
            ).fetchall()
        }
        missing = [d for d in trading_days(min(have), max(have)) if d not in have]
        con.execute(
            "DELETE FROM session_gaps WHERE symbol = ? AND frequency = '1d' AND source = ?",
            [symbol, source],
        ).fetchall()
        if missing:
            con.executemany(
                "INSERT INTO session_gaps VALUES (?, '1d', ?, ?, 1, 0, 1, NULL)",
                [[symbol, source, d] for d in missing],
            )
        missing_all.update(missing)
    return tuple(sorted(missing_all))
