"""Shanghai exchange (XSHG) trading calendar and intraday session grids.

All instants returned here are timezone-aware.  Exchange time is Asia/Shanghai (UTC+8, no DST);
intraday bars are stamped with their END time, a bar stamped t covers (t - frequency, t].
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pandas_market_calendars as mcal

from feeds.schema import InstrumentKind

EXCHANGE_TZ = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")

# The calendar is materialised once per process for this span (pandas-market-calendars knows
# XSHG holidays from 2005; later years follow its rules).
_CAL_START = date(2005, 1, 1)
_CAL_END = date(2030, 12, 31)

# CFFEX moved CSI 300 index futures to the cash-market session on 2016-01-01.
FUTURES_SESSION_CHANGE = date(2016, 1, 1)

Segment = tuple[time, time]
_CASH_SESSION: tuple[Segment, ...] = ((time(9, 30), time(11, 30)), (time(13, 0), time(15, 0)))
_FUTURES_PRE_2016: tuple[Segment, ...] = ((time(9, 15), time(11, 30)), (time(13, 0), time(15, 15)))


@lru_cache(maxsize=1)
def _trading_days() -> tuple[date, ...]:
    cal = mcal.get_calendar("XSHG")
    days = cal.valid_days(_CAL_START.isoformat(), _CAL_END.isoformat())
    return tuple(d.date() for d in days)


@lru_cache(maxsize=1)
def _trading_day_set() -> frozenset[date]:
    return frozenset(_trading_days())


def _check_span(d: date) -> None:
    if not _CAL_START <= d <= _CAL_END:
        raise ValueError(f"{d} is outside the XSHG calendar span {_CAL_START}..{_CAL_END}")


def is_trading_day(d: date) -> bool:
    """True when ``d`` is an XSHG trading day."""
    _check_span(d)
    return d in _trading_day_set()


def trading_days(start: date, end: date) -> list[date]:
    """XSHG trading days in ``[start, end]``, ascending."""
    days = _trading_days()
    lo = bisect.bisect_left(days, start)
    hi = bisect.bisect_right(days, end)
    return list(days[lo:hi])


def all_trading_days() -> tuple[date, ...]:
    """Every trading day the calendar knows (2005-2030)."""
    return _trading_days()


def next_trading_day(d: date) -> date:
    """First trading day strictly after ``d``."""
    days = _trading_days()
    i = bisect.bisect_right(days, d)
    if i >= len(days):
        raise ValueError(f"no XSHG trading day after {d} in the calendar span")
    return days[i]


def previous_trading_day(d: date) -> date:
    """Last trading day strictly before ``d``."""
    days = _trading_days()
    i = bisect.bisect_left(days, d)
    if i == 0:
        raise ValueError(f"no XSHG trading day before {d} in the calendar span")
    return days[i - 1]


def session_segments(kind: InstrumentKind, d: date) -> tuple[Segment, ...]:
    """Continuous-trading segments (exchange time) of ``kind`` on ``d``, lunch break excluded."""
    if kind is InstrumentKind.INDEX_FUTURE and d < FUTURES_SESSION_CHANGE:
        return _FUTURES_PRE_2016
    return _CASH_SESSION


def session_close(kind: InstrumentKind, d: date) -> datetime:
    """The instant session ``d`` closes (tz-aware, exchange time): the daily bar stamp."""
    return datetime.combine(d, session_segments(kind, d)[-1][1], tzinfo=EXCHANGE_TZ)


def intraday_grid(kind: InstrumentKind, d: date, minutes: int) -> list[datetime]:
    """Expected bar END stamps on ``d`` for bars of ``minutes`` length (tz-aware, exchange time)."""
    step = timedelta(minutes=minutes)
    out: list[datetime] = []
    for start, end in session_segments(kind, d):
        t = datetime.combine(d, start, tzinfo=EXCHANGE_TZ) + step
        stop = datetime.combine(d, end, tzinfo=EXCHANGE_TZ)
        while t <= stop:
            out.append(t)
            t += step
    return out
