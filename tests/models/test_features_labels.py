"""Features and labels on tiny hand-built frames (values worked out by hand) and the market."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from feeds.calendar import trading_days
from models.config import FeatureSpec
from models.features import (
    DAILY_FEATURES,
    INTRADAY_FEATURES,
    TOKEN_FEATURES,
    FeatureError,
    build_windows,
    intraday_feature_table,
)
from models.labels import next_direction
from tests.models.conftest import Market

SPEC = FeatureSpec(daily_window=3, zscore_window=5, vol_window=3)


def _daily(closes: list[float], start: date = date(2024, 1, 2)) -> pl.DataFrame:
    days = trading_days(start, start + timedelta(days=3 * len(closes) + 10))[: len(closes)]
    c = np.asarray(closes, dtype=float)
    return pl.DataFrame(
        {
            "session": days,
            "open": c,
            "high": c * 1.01,
            "low": c * 0.99,
            "close": c,
            "volume": np.linspace(1e9, 2e9, len(c)),
            "amount": np.linspace(1e10, 2e10, len(c)),
        }
    )


def _bar(session: date, hhmm: str, o: float, c: float, v: float = 100.0) -> dict[str, object]:
    h, m = map(int, hhmm.split(":"))
    ts = datetime(session.year, session.month, session.day, h, m, tzinfo=UTC) - timedelta(hours=8)
    return {
        "session": session,
        "ts": ts,
        "open": o,
        "high": max(o, c),
        "low": min(o, c),
        "close": c,
        "volume": v,
    }


def test_labels_are_next_close_direction_and_drop_unsettled_rows() -> None:
    d = _daily([10.0, 11.0, 10.5, 10.5, 12.0])
    lab = next_direction(d)
    assert lab.get_column("label").to_list() == [1, 0, 0, 1]  # a flat close counts as not up
    assert lab.get_column("label_session").to_list() == d.get_column("session").to_list()[1:]
    assert next_direction(d, horizon=2).get_column("label").to_list() == [1, 0, 1]


def test_daily_window_values_by_hand() -> None:
    d = _daily([100.0 * 1.01**i for i in range(12)])
    w = build_windows(d, None, SPEC)
    assert w.x_daily.shape[1:] == (3, len(TOKEN_FEATURES))
    # rows are complete from row 4 (5-session z-scores; 3-return vol from row 3), so the first
    # window of 3 complete rows ends at row 6 = spec.warmup - 1
    assert SPEC.warmup == 7
    assert w.sessions[0] == np.datetime64(d.get_column("session")[6])
    ret = w.x_daily[0, :, DAILY_FEATURES.index("ret")]
    np.testing.assert_allclose(ret, math.log(1.01), rtol=1e-6)
    np.testing.assert_allclose(
        w.x_daily[0, :, DAILY_FEATURES.index("range")], math.log(1.01 / 0.99), rtol=1e-6
    )
    assert not w.has_intra.any()


def test_intraday_first_bar_ignores_overnight_gap_and_lunch_takes_no_time() -> None:
    s1, s2 = date(2024, 1, 2), date(2024, 1, 3)
    bars = pl.DataFrame(
        [
            _bar(s1, "11:30", 100.0, 101.0),
            _bar(s1, "13:05", 101.0, 102.0),
            # roll day: the new contract opens 5% higher; the first bar's move is open -> close
            _bar(s2, "09:35", 107.0, 107.5),
            _bar(s2, "15:00", 107.5, 108.0),
            _bar(s2, "15:15", 108.0, 120.0),  # off the cash grid (pre-2016 futures trading)
            _bar(s2, "09:33", 107.0, 107.0),  # not on the 5-minute grid
        ]
    )
    t = intraday_feature_table(bars, 5)
    assert t.height == 4
    assert t.get_column("slot").to_list() == [23, 24, 0, 47]
    pos = t.get_column("session_pos").to_list()
    assert pos[1] - pos[0] == pytest.approx(1 / 48)  # 11:30 -> 13:05 is one bar, not 19
    rets = t.get_column("ret").to_list()
    assert rets[2] == pytest.approx(math.log(107.5 / 107.0))  # not log(107.5 / 102)
    assert t.get_column("afternoon").to_list() == [0.0, 1.0, 0.0, 1.0]
    assert set(INTRADAY_FEATURES) <= set(t.columns)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d.with_columns(
                pl.when(pl.int_range(pl.len()) == 15)
                .then(float("nan"))
                .otherwise(pl.col("close"))
                .alias("close")
            ),
            "NaN",
        ),
        (lambda d: d.filter(pl.int_range(pl.len()) != 18), "missing"),
        (lambda d: d.head(6), "too little history"),
        (lambda d: d.with_columns(pl.lit(-1.0).alias("low")), "non-positive"),
    ],
    ids=["nan", "gap", "short", "bad-price"],
)
def test_bad_daily_input_raises_clearly(mutate, message: str) -> None:
    d = mutate(_daily([100.0 + i for i in range(20)]))
    last = d.get_column("session").max()
    with pytest.raises(FeatureError, match=message):
        build_windows(d, None, SPEC, sessions=[last], strict=True)


def test_market_windows_align_with_intraday_availability(market: Market) -> None:
    spec = FeatureSpec(daily_window=10, zscore_window=10, vol_window=10)
    w = build_windows(market.daily, market.intraday, spec)
    with_bars = set(market.intraday.get_column("session").unique().to_list())
    got = {
        s
        for s, h in zip(w.sessions.astype("datetime64[D]").tolist(), w.has_intra, strict=True)
        if h
    }
    assert got == with_bars & set(w.sessions.astype("datetime64[D]").tolist())
    assert w.m_intra[w.has_intra].sum(1).min() == 48  # synthetic sessions are complete
    assert not np.isnan(w.x_daily).any() and not np.isnan(w.x_intra).any()
