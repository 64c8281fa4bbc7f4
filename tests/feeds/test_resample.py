"""Resampling end-stamped bars: 1m -> 5m and 1m -> daily, by hand and on the synthetic market."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.read import daily_bars, intraday_bars
from feeds.resample import intraday_to_daily, resample_agreement, resample_intraday
from feeds.schema import BAR_SCHEMA
from feeds.synthetic import SYNTHETIC_SYMBOL, synthetic_market
from tests.feeds.helpers import SH

D = date(2024, 1, 2)
# (end stamp Shanghai, open, high, low, close, volume, amount)
MINUTE_ROWS = [
    ((9, 31), 10.0, 11.0, 9.0, 10.5, 100.0, 1000.0),
    ((9, 32), 10.5, 12.0, 10.0, 11.0, 200.0, 2000.0),
    ((9, 33), 11.0, 11.5, 10.8, 11.2, 50.0, 500.0),
    ((9, 34), 11.2, 11.3, 10.1, 10.2, 150.0, 1500.0),
    ((9, 35), 10.2, 10.4, 10.0, 10.3, 100.0, 1000.0),
    ((9, 36), 10.3, 10.9, 10.3, 10.8, 300.0, 3000.0),
    ((11, 30), 10.8, 10.9, 10.7, 10.75, 40.0, 400.0),
    ((13, 1), 10.9, 11.0, 10.85, 10.95, 60.0, 600.0),
]


def _sh(d: date, hm: tuple[int, int]) -> datetime:
    return datetime(d.year, d.month, d.day, *hm, tzinfo=SH).astimezone(UTC)


@pytest.fixture
def minute_frame() -> pl.DataFrame:
    """Eight canonical 1-minute bars of one session, stamped with their end (UTC)."""
    return pl.DataFrame(
        {
            "symbol": "000300.SH",
            "kind": "index",
            "frequency": "1m",
            "source": "test",
            "session": D,
            "ts": [_sh(D, r[0]) for r in MINUTE_ROWS],
            **{
                c: [r[i] for r in MINUTE_ROWS]
                for i, c in enumerate(("open", "high", "low", "close", "volume", "amount"), 1)
            },
            "open_interest": None,
        }
    ).cast(BAR_SCHEMA)  # type: ignore[arg-type]


def test_one_minute_to_five_minutes_by_hand(minute_frame: pl.DataFrame) -> None:
    got = resample_intraday(minute_frame, 5)
    assert got.columns == minute_frame.columns
    assert got["frequency"].unique().to_list() == ["5m"]
    cols = ["ts", "open", "high", "low", "close", "volume", "amount"]
    assert got.select(cols).rows() == [
        # 09:31..09:35 -> bar ending 09:35
        (_sh(D, (9, 35)), 10.0, 12.0, 9.0, 10.3, 600.0, 6000.0),
        # 09:36 alone -> bar ending 09:40
        (_sh(D, (9, 40)), 10.3, 10.9, 10.3, 10.8, 300.0, 3000.0),
        # 11:30 closes the morning
        (_sh(D, (11, 30)), 10.8, 10.9, 10.7, 10.75, 40.0, 400.0),
        # 13:01 opens the afternoon's first bar, ending 13:05 (not the lunch break)
        (_sh(D, (13, 5)), 10.9, 11.0, 10.85, 10.95, 60.0, 600.0),
    ]


def test_resample_works_on_store_reads_without_frequency(minute_frame: pl.DataFrame) -> None:
    got = resample_intraday(minute_frame.drop("frequency"), 5)
    assert "frequency" not in got.columns
    assert got.height == 4


def test_one_minute_to_daily_by_hand(minute_frame: pl.DataFrame) -> None:
    got = intraday_to_daily(minute_frame)
    assert got.select(
        "session", "open", "high", "low", "close", "volume", "amount", "ts"
    ).rows() == [(D, 10.0, 12.0, 9.0, 10.95, 1000.0, 10000.0, _sh(D, (13, 1)))]


def test_resample_agreement_by_hand(minute_frame: pl.DataFrame) -> None:
    daily = pl.DataFrame(
        {"session": [D], "high": [12.0], "low": [9.0], "close": [11.0], "volume": [800.0]}
    )
    got = resample_agreement(minute_frame, daily)
    assert got.columns == ["session", "rel_diff_high", "rel_diff_low", "rel_diff_close",
                           "rel_diff_volume"]  # fmt: skip
    row = got.row(0, named=True)
    assert row["rel_diff_high"] == 0.0
    assert row["rel_diff_low"] == 0.0
    assert row["rel_diff_close"] == pytest.approx(0.05 / 11.0)
    assert row["rel_diff_volume"] == pytest.approx(0.25)


def test_empty_frame_resamples_to_empty(minute_frame: pl.DataFrame) -> None:
    assert resample_intraday(minute_frame.clear(), 5).is_empty()


@pytest.fixture(scope="module")
def market():
    return synthetic_market(date(2024, 3, 18), date(2024, 3, 29), seed=5)


def test_synthetic_minutes_resample_to_the_daily_bars(market) -> None:
    got = intraday_to_daily(market.minute)
    want = market.daily
    assert got["session"].to_list() == want["session"].to_list()
    assert got["ts"].to_list() == want["ts"].to_list()  # last bar ends at the 15:00 close
    for c in ("open", "high", "low", "close", "volume", "amount"):
        assert got[c].to_list() == pytest.approx(want[c].to_list(), rel=1e-12), c
    agree = resample_agreement(market.minute, market.daily)
    assert agree.height == want.height
    assert agree.drop("session").max().row(0) == pytest.approx((0.0,) * 4, abs=1e-12)


def test_synthetic_five_minute_bars_follow_the_grid(market) -> None:
    five = resample_intraday(market.minute, 5)
    per_session = five.group_by("session").len()
    assert per_session["len"].to_list() == [48] * market.daily.height
    local = five["ts"].dt.convert_time_zone("Asia/Shanghai")
    assert local.dt.strftime("%H:%M").unique().sort().to_list()[:2] == ["09:35", "09:40"]
    assert five["volume"].sum() == pytest.approx(market.minute["volume"].sum(), rel=1e-12)


def test_stored_synthetic_minutes_agree_with_stored_daily(
    synthetic_store: duckdb.DuckDBPyConnection,
) -> None:
    minute = intraday_bars(synthetic_store, SYNTHETIC_SYMBOL, "1m")
    daily = daily_bars(synthetic_store, SYNTHETIC_SYMBOL, start=minute["session"].min())
    agree = resample_agreement(minute, daily)
    assert agree.height == 5
    assert agree.drop("session").max().row(0) == pytest.approx((0.0,) * 4, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(dropped=st.sets(st.integers(0, 479), max_size=470))
def test_resampling_in_steps_agrees_with_resampling_at_once(market, dropped: set[int]) -> None:
    """1m -> 5m -> daily equals 1m -> daily (OHLCV), whatever minutes are missing."""
    two_sessions = market.minute.filter(pl.col("session") <= date(2024, 3, 19))
    keep = pl.Series([i not in dropped for i in range(two_sessions.height)])
    minute = two_sessions.filter(keep)
    direct = intraday_to_daily(minute)
    stepped = intraday_to_daily(resample_intraday(minute, 5))
    # (ts differs by design: the daily stamp is the last bar's end, rounded up to 5m when stepped)
    cols = ["session", "open", "high", "low", "close"]
    assert stepped.select(cols).equals(direct.select(cols))
    assert stepped["volume"].to_list() == pytest.approx(direct["volume"].to_list(), rel=1e-12)
    assert stepped["amount"].to_list() == pytest.approx(direct["amount"].to_list(), rel=1e-12)
