"""XSHG calendar: trading days, holidays, neighbours, session segments and intraday grids."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from feeds.calendar import (
    EXCHANGE_TZ,
    intraday_grid,
    is_trading_day,
    next_trading_day,
    previous_trading_day,
    session_close,
    session_segments,
    trading_days,
)
from feeds.schema import InstrumentKind

INDEX = InstrumentKind.INDEX
FUTURE = InstrumentKind.INDEX_FUTURE


@pytest.mark.parametrize(
    ("d", "open_"),
    [
        (date(2024, 2, 8), True),  # last session before Spring Festival
        (date(2024, 2, 12), False),  # Spring Festival, a Monday
        (date(2024, 2, 19), True),  # first session after it
        (date(2024, 10, 1), False),  # National Day
        (date(2024, 1, 6), False),  # Saturday
        (date(2024, 1, 7), False),  # Sunday
        (date(2024, 1, 8), True),
        (date(2016, 1, 4), True),  # circuit-breaker day still a session
    ],
)
def test_is_trading_day(d: date, open_: bool) -> None:
    assert is_trading_day(d) is open_


def test_is_trading_day_outside_span_raises() -> None:
    with pytest.raises(ValueError, match="outside the XSHG calendar span"):
        is_trading_day(date(1999, 1, 4))


def test_trading_days_around_spring_festival_2024() -> None:
    got = trading_days(date(2024, 2, 5), date(2024, 2, 20))
    # 2024-02-09..2024-02-17 closed (Spring Festival and weekends).
    assert got == [
        date(2024, 2, 5),
        date(2024, 2, 6),
        date(2024, 2, 7),
        date(2024, 2, 8),
        date(2024, 2, 19),
        date(2024, 2, 20),
    ]


def test_next_and_previous_trading_day() -> None:
    assert next_trading_day(date(2024, 2, 8)) == date(2024, 2, 19)
    assert previous_trading_day(date(2024, 2, 19)) == date(2024, 2, 8)
    assert next_trading_day(date(2024, 1, 5)) == date(2024, 1, 8)  # Friday -> Monday
    assert previous_trading_day(date(2024, 1, 6)) == date(2024, 1, 5)  # from a Saturday
    assert next_trading_day(date(2024, 9, 30)) == date(2024, 10, 8)  # over National Day


def test_session_segments_cash_market() -> None:
    cash = ((time(9, 30), time(11, 30)), (time(13, 0), time(15, 0)))
    assert session_segments(INDEX, date(2015, 6, 1)) == cash
    assert session_segments(INDEX, date(2024, 1, 2)) == cash


def test_session_segments_index_futures_before_and_after_2016() -> None:
    assert session_segments(FUTURE, date(2015, 12, 31)) == (
        (time(9, 15), time(11, 30)),
        (time(13, 0), time(15, 15)),
    )
    assert session_segments(FUTURE, date(2016, 1, 4)) == (
        (time(9, 30), time(11, 30)),
        (time(13, 0), time(15, 0)),
    )


def test_session_close() -> None:
    assert session_close(INDEX, date(2024, 1, 2)) == datetime(2024, 1, 2, 15, tzinfo=EXCHANGE_TZ)
    assert session_close(FUTURE, date(2015, 1, 5)) == datetime(
        2015, 1, 5, 15, 15, tzinfo=EXCHANGE_TZ
    )


@pytest.mark.parametrize(
    ("kind", "d", "minutes", "n", "first", "last"),
    [
        (INDEX, date(2024, 1, 2), 1, 240, time(9, 31), time(15, 0)),
        (FUTURE, date(2024, 1, 2), 1, 240, time(9, 31), time(15, 0)),
        (FUTURE, date(2015, 1, 5), 1, 270, time(9, 16), time(15, 15)),
        (INDEX, date(2024, 1, 2), 5, 48, time(9, 35), time(15, 0)),
        (FUTURE, date(2019, 10, 31), 5, 48, time(9, 35), time(15, 0)),
        (FUTURE, date(2015, 1, 5), 5, 54, time(9, 20), time(15, 15)),
    ],
)
def test_intraday_grid_sizes(
    kind: InstrumentKind, d: date, minutes: int, n: int, first: time, last: time
) -> None:
    grid = intraday_grid(kind, d, minutes)
    assert len(grid) == n
    assert grid[0] == datetime.combine(d, first, tzinfo=EXCHANGE_TZ)
    assert grid[-1] == datetime.combine(d, last, tzinfo=EXCHANGE_TZ)
    assert all(g.tzinfo is not None for g in grid)


def test_intraday_grid_skips_lunch_break() -> None:
    stamps = {g.time() for g in intraday_grid(INDEX, date(2024, 1, 2), 1)}
    assert time(11, 30) in stamps
    assert time(13, 1) in stamps
    assert not any(time(11, 31) <= t <= time(13, 0) for t in stamps)
