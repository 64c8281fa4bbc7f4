"""Missing-bar accounting of what an ingest touched: ``session_gaps`` rows per series session.

Intraday: expected bars (the session grid of the bar's kind) against present ones, with the
first missing bar's end.  Daily: the XSHG sessions without a stored bar inside each series'
span (such a session breaks the label of the session before it, ``models.labels``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import duckdb
import polars as pl

from feeds.calendar import trading_days
from feeds.series import Factorized, factorize
from feeds.session import LOCAL_OFFSET_S, grid_exprs
from feeds.writer import SERIES_COLUMNS, stored_intraday

GAP_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "frequency": pl.String(),
        "source": pl.String(),
        "session": pl.Date(),
        "expected": pl.Int32(),
        "present": pl.Int32(),
        "missing": pl.Int32(),
        "first_missing": pl.Datetime("us", "UTC"),
    }
)
_SERIES = ["symbol", "frequency", "source", "session"]
# the bar ends present in the short sessions asked for (a frame of them, numbered ``_sk``):
# (``_sk``, ts) of each bar
Present = Callable[[pl.DataFrame], pl.DataFrame]


def _grid_of(short: pl.DataFrame) -> pl.DataFrame:
    """The expected bar ends of each short session of ``short`` (``_sk``, kind, frequency,
    session): one row per bar (``_sk``, ts in UTC); ``feeds.calendar.intraday_grid``'s stamps
    (each segment's open plus one bar, up to its close), from ``feeds.session.grid_exprs`` in
    one pass."""
    m = pl.col("frequency").str.strip_suffix("m").cast(pl.Int64)
    am_open, am_close, pm_open, pm_close = grid_exprs(pl.col("kind"), pl.col("session"))
    ends = pl.concat_list(
        pl.int_ranges(am_open + m, am_close + 1, m), pl.int_ranges(pm_open + m, pm_close + 1, m)
    )
    # exchange-local minute of the session's day to UTC microseconds: Asia/Shanghai is a fixed
    # UTC+8 (``feeds.session.LOCAL_OFFSET_S``), so no time-zone lookup per bar
    day_s = pl.col("session").cast(pl.Int64) * 86_400 - LOCAL_OFFSET_S
    utc = ((day_s + pl.col("ts") * 60) * 1_000_000).cast(pl.Datetime("us", "UTC"))
    grid = short.select("_sk", "session", ends.alias("ts")).explode("ts")
    return grid.select("_sk", utc.alias("ts"))


def _gap_frame(counts: pl.DataFrame, present: Present) -> pl.DataFrame:
    """``session_gaps`` rows of ``counts`` (symbol, kind, frequency, source, session, present,
    and any columns ``present`` reads): the expected bars of each session's grid
    (``feeds.session.grid_exprs``: one pass over the frame); for the sessions with missing bars,
    numbered ``_sk``, the first expected bar end that ``present`` (of those sessions, with their
    ``_sk``: their bars' ``_sk`` and ``ts``) lacks: one anti-join on integers for all of them."""
    minutes = pl.col("frequency").str.strip_suffix("m").cast(pl.Int32)
    am_open, am_close, pm_open, pm_close = grid_exprs(pl.col("kind"), pl.col("session"))
    expected = (am_close - am_open) // minutes + (pm_close - pm_open) // minutes
    gaps = counts.with_columns(expected.cast(pl.Int32).alias("expected")).with_columns(
        (pl.col("expected") - pl.col("present")).clip(lower_bound=0).alias("missing")
    )
    short = gaps.filter(pl.col("missing") > 0).with_row_index("_sk")
    firsts = pl.DataFrame(schema={c: GAP_SCHEMA[c] for c in [*_SERIES, "first_missing"]})
    if not short.is_empty():
        utc = pl.col("ts").dt.convert_time_zone("UTC")  # the store's stamps come in its zone
        have = present(short).select(pl.col("_sk").cast(pl.UInt32), utc)
        missing = _grid_of(short).join(have, on=["_sk", "ts"], how="anti")
        first = missing.group_by("_sk").agg(pl.col("ts").min().alias("first_missing"))
        firsts = short.join(first, on="_sk").select(*_SERIES, "first_missing")
    return gaps.join(firsts, on=_SERIES, how="left").select(list(GAP_SCHEMA)).cast(GAP_SCHEMA)


def batch_gaps(bars: pl.DataFrame, series: Factorized | None = None) -> pl.DataFrame:
    """The ``session_gaps`` rows of intraday ``bars`` when they are all the store holds of their
    series in their sessions (a fresh write): counted from the batch alone, with no store access,
    so a worker thread counts the next batch while this one lands (``feeds.bulk``).  ``series``:
    ``factorize(bars, SERIES_COLUMNS)`` when the caller has it."""
    if bars.is_empty():
        return pl.DataFrame(schema=GAP_SCHEMA)
    f = factorize(bars, SERIES_COLUMNS) if series is None else series
    # each bar's series session as one integer (series code, session day): no strings hashed
    # per row, and one key for the counts and for the bars of the short sessions
    day = pl.col("session").cast(pl.Int64)  # within +-2**31: the key is one to one
    key = (pl.col("_code").cast(pl.Int64) * 2**32 + day).alias("_k")
    keyed = bars.select(f.codes.alias("_code"), "session", "ts").with_columns(key)
    per_key = keyed.group_by("_k").agg(
        pl.col("_code").first(), pl.col("session").first(), pl.len().cast(pl.Int64).alias("present")
    )
    names = f.values.with_row_index("_code")
    counts = per_key.join(names, on="_code").select(*SERIES_COLUMNS, "session", "present", "_k")

    def present_in(short: pl.DataFrame) -> pl.DataFrame:
        return keyed.join(short.select("_k", "_sk"), on="_k").select("_sk", "ts")

    return _gap_frame(counts, present_in)


def record_session_gaps(
    con: duckdb.DuckDBPyConnection,
    bars: pl.DataFrame,
    *,
    fresh: bool = False,
    counted: pl.DataFrame | None = None,
) -> int:
    """Recount expected vs present bars for every (symbol, frequency, source, session) touched.

    ``bars`` have just been written, so each of them is stored; when the store holds no other
    row of their series in their sessions (``fresh``: the writer found none before the write;
    else one count answers it), they are what is present: ``batch_gaps`` (``counted``, when
    the caller computed it ahead) answers without the store.  Returns the number of touched
    sessions with missing bars.
    """
    if bars.is_empty():
        return 0
    counts = None
    if not fresh:
        touched = bars.select(*SERIES_COLUMNS, "session").unique()
        counts = _stored_counts(con, bars.height, touched)
    # a fresh write's sessions have no gap rows yet (its bars are the first of their keys there,
    # and stored bars are never deleted): a plain insert, which skips the key lookups
    verb = "INSERT" if fresh else "INSERT OR REPLACE"
    if counts is None:
        gaps = counted if counted is not None else batch_gaps(bars)
    else:

        def present_in(short: pl.DataFrame) -> pl.DataFrame:
            stored, params = stored_intraday(con, short["symbol"].unique().to_list())
            span = [short["session"].min(), short["session"].max()]
            con.register("_short", short.select("_sk", *_SERIES).to_arrow())
            try:
                return con.sql(
                    f"SELECT k._sk, s.ts FROM {stored} s "
                    "JOIN _short k USING (symbol, frequency, source, session) "
                    "WHERE s.session BETWEEN ? AND ?",
                    params=[*params, *span],
                ).pl()
            finally:
                con.unregister("_short")

        numbers = {"session": pl.Date, "present": pl.Int64}
        schema = dict.fromkeys(SERIES_COLUMNS, pl.String) | numbers
        gaps = _gap_frame(pl.DataFrame(counts, schema=schema, orient="row"), present_in)
    con.register("_gaps", gaps.to_arrow())
    con.execute(f"{verb} INTO session_gaps SELECT * FROM _gaps").fetchall()
    con.unregister("_gaps")
    return int(gaps.select((pl.col("missing") > 0).sum()).item())


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
