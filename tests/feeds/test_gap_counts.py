"""Session-gap counts: a batch counted on its own (``batch_gaps``, ahead of the landing) gives
the rows a recount in the store gives, whatever bars are missing and however they arrive."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.calendar import intraday_grid
from feeds.gaps import batch_gaps
from feeds.ingest import ingest_frame
from feeds.schema import InstrumentKind
from feeds.store import open_store
from feeds.synthetic import synthetic_market

# three sessions of 1-minute index-future bars before the 2016 session change (a grid of 270
# bars; the synthetic market draws 240 of them, the cash session's) and three of index bars
_FUT = synthetic_market(
    date(2015, 3, 2), date(2015, 3, 4), seed=7, kind=InstrumentKind.INDEX_FUTURE, symbol="IF.CFX"
).minute
_IDX = synthetic_market(date(2023, 8, 1), date(2023, 8, 3), seed=8, symbol="SYNGAP.SH").minute


def _gaps(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute(
        "SELECT symbol, frequency, source, session, expected, present, missing, first_missing "
        "FROM session_gaps ORDER BY ALL"
    ).fetchall()


@settings(max_examples=25, deadline=None)
@given(
    which=st.sampled_from(["future", "index", "both"]),
    holes=st.lists(st.integers(0, 1529), max_size=40),
    split=st.integers(1, 1529),
)
def test_a_batch_counted_alone_matches_a_recount_in_the_store(
    which: str, holes: list[int], split: int
) -> None:
    bars = {"future": _FUT, "index": _IDX, "both": pl.concat([_FUT, _IDX])}[which]
    n = bars.height
    bars = bars.with_row_index("_i").filter(~pl.col("_i").is_in(holes)).drop("_i")
    split = min(split, bars.height - 1)
    with tempfile.TemporaryDirectory() as tmp:
        whole = open_store(Path(tmp) / "whole.duckdb")  # one fresh batch: counted ahead
        ingest_frame(whole, bars, name="whole", key="whole")
        parts = open_store(Path(tmp) / "parts.duckdb")  # the tail lands beside stored rows
        ingest_frame(parts, bars.head(split), name="head", key="head")
        ingest_frame(parts, bars.slice(split), name="tail", key="tail")
        got, recounted = _gaps(whole), _gaps(parts)
        whole.close()
        parts.close()
    assert got == recounted
    # every bar is counted once; what is missing is the rest of each session's grid
    assert sum(r[5] for r in got) == bars.height == n - len(set(holes) & set(range(n)))
    assert sum(r[6] for r in got) == sum(r[4] for r in got) - bars.height


@settings(max_examples=25, deadline=None)
@given(
    which=st.sampled_from(["future", "index", "both"]),
    holes=st.lists(st.integers(0, 1529), max_size=40),
)
def test_expected_and_first_missing_bars_are_the_calendars(which: str, holes: list[int]) -> None:
    """Against ``feeds.calendar.intraday_grid`` session by session: the expected count is its
    length and the first missing bar its first stamp the batch lacks (none when complete)."""
    bars = {"future": _FUT, "index": _IDX, "both": pl.concat([_FUT, _IDX])}[which]
    bars = bars.with_row_index("_i").filter(~pl.col("_i").is_in(holes)).drop("_i")
    got = batch_gaps(bars)
    kinds = dict(bars.select("symbol", "kind").unique().iter_rows())
    for symbol, freq, source, session, expected, present, missing, first in got.iter_rows():
        grid = intraday_grid(InstrumentKind(kinds[symbol]), session, int(freq.rstrip("m")))
        have = set(bars.filter(symbol=symbol, frequency=freq, source=source, session=session)["ts"])
        absent = [t for t in grid if t not in have]
        assert (expected, present, missing) == (len(grid), len(have), len(absent))
        assert first == (absent[0] if absent else None)
