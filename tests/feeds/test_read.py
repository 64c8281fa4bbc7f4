"""Point-in-time reads: as_of never returns a bar that ends after the instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.read import NoDataError, daily_bars, intraday_bars, resolve_source, sources
from feeds.resample import resample_intraday
from feeds.synthetic import SYNTHETIC_SYMBOL
from tests.feeds.helpers import SH

SYM = SYNTHETIC_SYMBOL  # the synthetic market has its own symbol
# synthetic_store: daily bars 2024-01-02..2024-03-29, 1m bars on the last 5 sessions (03-25..29)
_START = datetime(2024, 3, 21, tzinfo=UTC)
_SPAN_S = 10 * 24 * 3600


@pytest.mark.parametrize("reader", [daily_bars, intraday_bars])
def test_naive_as_of_is_rejected(synthetic_store: duckdb.DuckDBPyConnection, reader) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        reader(synthetic_store, SYM, as_of=datetime(2024, 3, 29, 15))


def test_daily_bar_visible_from_the_session_close(
    synthetic_store: duckdb.DuckDBPyConnection,
) -> None:
    d = date(2024, 3, 27)
    before = daily_bars(synthetic_store, SYM, as_of=datetime(2024, 3, 27, 14, 59, tzinfo=SH))
    at_close = daily_bars(synthetic_store, SYM, as_of=datetime(2024, 3, 27, 15, 0, tzinfo=SH))
    assert before["session"].max() == date(2024, 3, 26)
    assert at_close["session"].max() == d
    # the same instant in UTC gives the same answer
    utc = daily_bars(synthetic_store, SYM, as_of=datetime(2024, 3, 27, 7, 0, tzinfo=UTC))
    assert utc["session"].max() == d


def test_intraday_bar_visible_from_its_end(synthetic_store: duckdb.DuckDBPyConnection) -> None:
    at = datetime(2024, 3, 27, 9, 33, tzinfo=SH)
    got = intraday_bars(synthetic_store, SYM, "1m", start=date(2024, 3, 27), as_of=at)
    assert got["ts"].to_list()[-1] == at
    assert got.height == 3  # 09:31, 09:32, 09:33
    five = intraday_bars(synthetic_store, SYM, "5m", start=date(2024, 3, 27), as_of=at)
    assert five.is_empty()  # the 09:35 bar has not ended yet


def test_reads_return_utc_aware_timestamps(synthetic_store: duckdb.DuckDBPyConnection) -> None:
    d = daily_bars(synthetic_store, SYM)
    m = intraday_bars(synthetic_store, SYM, "1m")
    assert d.schema["ts"] == pl.Datetime("us", "UTC")
    assert m.schema["ts"] == pl.Datetime("us", "UTC")
    assert d["ts"][0] == datetime(2024, 1, 2, 7, 0, tzinfo=UTC)  # 15:00 Shanghai
    assert m["ts"][0] == datetime(2024, 3, 25, 1, 31, tzinfo=UTC)  # 09:31 Shanghai


def _instants() -> st.SearchStrategy[datetime]:
    anywhere = st.integers(0, _SPAN_S).map(lambda s: _START + timedelta(seconds=s))
    # bar ends and their neighbours, where an off-by-one would show
    near_stamp = st.tuples(st.integers(0, 10 * 24 * 60), st.sampled_from([-1, 0, 1])).map(
        lambda t: _START + timedelta(minutes=t[0], microseconds=t[1])
    )
    tz = st.sampled_from([UTC, SH])
    return st.tuples(st.one_of(anywhere, near_stamp), tz).map(lambda x: x[0].astimezone(x[1]))


@pytest.fixture(scope="module")
def full_reads(synthetic_store: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    minute = intraday_bars(synthetic_store, SYM, "1m")
    return {
        "1d": daily_bars(synthetic_store, SYM),
        "1m": minute,
        "5m": resample_intraday(minute, 5),
    }


@settings(max_examples=40, deadline=None)
@given(at=_instants())
def test_as_of_never_returns_a_bar_ending_after_the_instant(
    synthetic_store: duckdb.DuckDBPyConnection, full_reads: dict[str, pl.DataFrame], at: datetime
) -> None:
    got = {
        "1d": daily_bars(synthetic_store, SYM, as_of=at),
        "1m": intraday_bars(synthetic_store, SYM, "1m", as_of=at),
        "5m": intraday_bars(synthetic_store, SYM, "5m", as_of=at),  # resampled from 1m
    }
    cut = at.astimezone(UTC)
    for freq, frame in got.items():
        assert frame.filter(pl.col("ts") > cut).is_empty(), freq
        # truncation invariance: as_of equals the full read cut at the instant
        assert frame.equals(full_reads[freq].filter(pl.col("ts") <= cut)), freq


def test_sources_and_priority(synthetic_store: duckdb.DuckDBPyConnection) -> None:
    assert sources(synthetic_store, SYM, "1d") == ["synthetic"]
    assert sources(synthetic_store, SYM, "5m") == []
    assert resolve_source(synthetic_store, SYM, "1m") == "synthetic"
    with pytest.raises(NoDataError):
        daily_bars(synthetic_store, "600519.SH")
    with pytest.raises(ValueError, match="daily_bars"):
        intraday_bars(synthetic_store, SYM, "1d")


def test_source_priority_prefers_real_vendors(store: duckdb.DuckDBPyConnection) -> None:
    from feeds.ingest import ingest_synthetic
    from feeds.writer import write_bars

    ingest_synthetic(store, start=date(2024, 1, 2), end=date(2024, 1, 5), seed=1, minute_sessions=0)
    bars = daily_bars(store, SYM).with_columns(
        pl.lit("000300.SH").alias("symbol"), pl.lit("1d").alias("frequency")
    )
    for src in ("eastmoney", "wind"):
        write_bars(store, bars.with_columns(pl.lit(src).alias("source")), file_sha256=None)
    assert sources(store, "000300.SH", "1d") == ["eastmoney", "wind"]
    assert resolve_source(store, "000300.SH", "1d") == "wind"
    assert daily_bars(store, "000300.SH")["source"].unique().to_list() == ["wind"]
