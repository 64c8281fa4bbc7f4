"""Dated fees against numbers written out by hand from the CFFEX and MoF/STA notices."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from backtest.costs import A_SHARE_STAMP_DUTY, FuturesCosts, StockCosts, proportional_rate
from feeds.calendar import all_trading_days

# (session, close-today rate) straight from the notices: 万分之 x = x / 10,000 of turnover.
IF_CLOSE_TODAY_BY_HAND = [
    (date(2015, 8, 25), 0.23 / 10_000),  # ordinary fee before the first 2015 notice
    (date(2015, 8, 26), 1.15 / 10_000),
    (date(2015, 9, 7), 23.0 / 10_000),
    (date(2016, 1, 4), 23.0 / 10_000),
    (date(2017, 2, 17), 9.2 / 10_000),
    (date(2017, 9, 18), 6.9 / 10_000),
    (date(2018, 12, 3), 4.6 / 10_000),
    (date(2019, 4, 22), 3.45 / 10_000),
    (date(2023, 3, 17), 3.45 / 10_000),  # the Friday before the cut to 2.3
    (date(2023, 3, 20), 2.3 / 10_000),
]


@pytest.mark.parametrize(("day", "rate"), IF_CLOSE_TODAY_BY_HAND)
def test_if_close_today_follows_the_dated_schedule(day: date, rate: float) -> None:
    p = FuturesCosts()
    days = np.array([day], dtype="datetime64[D]")
    today = proportional_rate(p, days, np.array([True]), np.array([True]))
    overnight = proportional_rate(p, days, np.array([True]), np.array([False]))
    assert today[0] == pytest.approx(rate, rel=1e-12)
    assert overnight[0] == pytest.approx(0.23 / 10_000, rel=1e-12)


def test_a_10m_cny_close_today_on_2015_09_08_costs_2300_cny() -> None:
    """By hand: 10,000,000 CNY x 23/10,000 = 23,000 CNY; the same trade in 2024 costs 2,300."""
    p = FuturesCosts()
    notional = 10_000_000.0
    for day, fee in ((date(2015, 9, 8), 23_000.0), (date(2024, 6, 28), 2_300.0)):
        r = proportional_rate(
            p, np.array([day], dtype="datetime64[D]"), np.array([True]), np.array([True])
        )
        assert notional * r[0] == pytest.approx(fee, rel=1e-12)


def test_stock_costs_by_hand_around_the_2023_stamp_duty_cut() -> None:
    """Sell 1,000,000 CNY of stock: commission 2.5 bp + CSDC 0.1 bp + stamp duty (10 bp, then 5)."""
    p = StockCosts()
    days = np.array([date(2023, 8, 25), date(2023, 8, 28)], dtype="datetime64[D]")
    sell = proportional_rate(p, days, np.array([True, True]), np.array([False, False]))
    assert (1e6 * sell).tolist() == pytest.approx([250 + 10 + 1000, 250 + 10 + 500])
    buy = proportional_rate(p, days, np.array([False, False]), np.array([False, False]))
    assert (1e6 * buy).tolist() == pytest.approx([260, 260])


def test_stamp_duty_covers_every_session_of_the_calendar() -> None:
    days = np.array(all_trading_days(), dtype="datetime64[D]")
    assert days[0] >= np.datetime64(A_SHARE_STAMP_DUTY[0][0])
    rate = proportional_rate(
        StockCosts(), days, np.ones(days.shape, bool), np.zeros(days.shape, bool)
    )
    assert np.isfinite(rate).all()
    first = proportional_rate(
        StockCosts(),
        np.array([date(2005, 1, 4)], dtype="datetime64[D]"),
        np.array([True]),
        np.array([False]),
    )
    assert first[0] == pytest.approx(2.5e-4 + 0.2e-4 + 20e-4)  # 0.2% stamp duty before 01-24
