"""The calendar's horizon and the operator's extra holidays apply to every calendar question."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.calendar import (
    CalendarHorizonError,
    configure,
    horizon,
    horizon_warning,
    is_trading_day,
    library_horizon,
    next_trading_day,
    trading_days,
    trading_days_array,
)
from feeds.validate import validate

# The official 2027 closures the library does not know (New Year's Day, Spring Festival).
HOLIDAYS_2027 = (date(2027, 1, 1), date(2027, 2, 8), date(2027, 2, 9), date(2027, 2, 10))


def test_default_horizon_is_the_end_of_the_librarys_last_holiday_year() -> None:
    # pandas-market-calendars 5.5.0 lists XSHG holidays through 2026.
    assert library_horizon() == date(2026, 12, 31) == horizon()
    assert trading_days(date(2026, 12, 28), date(2027, 1, 8))[-1] == date(2026, 12, 31)
    assert trading_days_array()[-1] == pl.Series([date(2026, 12, 31)]).to_numpy()[0]


def test_no_session_is_named_past_the_horizon() -> None:
    with pytest.raises(CalendarHorizonError, match="unknown until the official holidays"):
        next_trading_day(date(2026, 12, 31))  # the library would say 2027-01-01
    with pytest.raises(CalendarHorizonError, match="past the calendar horizon"):
        is_trading_day(date(2027, 1, 4))
    assert next_trading_day(date(2026, 12, 30)) == date(2026, 12, 31)


def test_extra_holidays_and_a_later_horizon_from_config() -> None:
    configure(extra_holidays=HOLIDAYS_2027, horizon=date(2027, 12, 31))
    assert next_trading_day(date(2026, 12, 31)) == date(2027, 1, 4)
    assert not is_trading_day(date(2027, 2, 9))
    assert next_trading_day(date(2027, 2, 5)) == date(2027, 2, 11)
    assert date(2027, 2, 8) not in trading_days(date(2027, 2, 1), date(2027, 2, 28))
    configure()
    assert is_trading_day(date(2026, 12, 31)) and horizon() == date(2026, 12, 31)


def test_an_extra_holiday_removes_a_session_everywhere() -> None:
    configure(extra_holidays=[date(2024, 3, 29)])  # pretend an unannounced closure
    assert not is_trading_day(date(2024, 3, 29))
    assert next_trading_day(date(2024, 3, 28)) == date(2024, 4, 1)
    assert date(2024, 3, 29) not in trading_days_array().astype(object).tolist()


def _row(session: date) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_line": [2],
            "_raw": [None],
            "_reason": [None],
            "_field": [None],
            "symbol": ["000300.SH"],
            "kind": ["index"],
            "frequency": ["1d"],
            "source": ["eastmoney"],
            "session": [session],
            "ts": [None],
            **{c: [10.0] for c in ("open", "high", "low", "close")},
            "volume": [1.0],
            "amount": [1.0],
            "open_interest": [None],
        },
        schema_overrides={
            "_raw": pl.String,
            "_reason": pl.String,
            "_field": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "open_interest": pl.Float64,
        },
    )


def test_validation_rejects_bars_past_the_horizon_and_on_extra_holidays() -> None:
    got = validate(_row(date(2027, 1, 4)), 0)
    assert got.rejected["_reason"].to_list() == [
        "2027-01-04 is past the calendar horizon 2026-12-31"
    ]
    configure(extra_holidays=HOLIDAYS_2027, horizon=date(2027, 12, 31))
    assert validate(_row(date(2027, 1, 4)), 0).bars.height == 1
    bad = validate(_row(date(2027, 2, 9)), 0).rejected["_reason"].to_list()
    assert bad == ["2027-02-09 is not an XSHG trading day"]


@pytest.mark.parametrize(
    ("today", "warn_days", "expect"),
    [
        (date(2026, 11, 1), 30, None),
        (date(2026, 12, 1), 30, "30 day(s) away"),
        (date(2026, 12, 31), 30, "0 day(s) away"),
        (date(2027, 1, 2), 30, "has passed"),
        (date(2026, 12, 1), 0, None),
    ],
)
def test_horizon_warning(today: date, warn_days: int, expect: str | None) -> None:
    got = horizon_warning(today, warn_days)
    assert got is None if expect is None else expect in (got or "")


@settings(max_examples=40, deadline=None)
@given(
    extra=st.sets(st.dates(date(2026, 10, 1), date(2026, 12, 31)), max_size=12),
    d=st.dates(date(2026, 9, 1), date(2026, 12, 31)),
)
def test_next_session_is_never_an_extra_holiday_nor_past_the_horizon(
    extra: set[date], d: date
) -> None:
    configure(extra_holidays=extra)
    try:
        nxt = next_trading_day(d)
    except CalendarHorizonError:
        assert not [x for x in trading_days(d, date(2026, 12, 31)) if x > d]
        return
    finally:
        configure()
    assert nxt > d and nxt not in extra and nxt <= date(2026, 12, 31)
    assert nxt.weekday() < 5
