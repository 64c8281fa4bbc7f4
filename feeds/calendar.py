"""Shanghai exchange (XSHG) trading calendar and intraday session grids.

All instants returned here are timezone-aware.  Exchange time is Asia/Shanghai (UTC+8, no DST);
intraday bars are stamped with their END time, a bar stamped t covers (t - frequency, t].

China publishes its holidays once a year, so the holiday list is complete only up to a
*horizon*: by default the last day of the last year pandas-market-calendars lists holidays for
(5.5.0: 2026-12-31; it would otherwise call 2027-01-01 and the Spring Festival sessions).  No
trading day is named past the horizon: ``is_trading_day`` and ``next_trading_day`` raise
``CalendarHorizonError`` there, and day lists stop at it.  ``configure`` installs the operator's
extra holidays and horizon (the ``calendar`` config section) once per process, so validation,
labels, scheduling and the API all ask the same calendar.  Make-up working weekends are not
sessions on the Shanghai exchange, so holidays are all that ever needs adding.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas_market_calendars as mcal

from feeds.schema import InstrumentKind

EXCHANGE_TZ = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")

# The rule-based calendar is materialised once per process for this span (pandas-market-calendars
# knows XSHG holidays from 2005); the horizon below cuts it where the holiday list ends.
_CAL_START = date(2005, 1, 1)
_CAL_END = date(2030, 12, 31)

# CFFEX moved CSI 300 index futures to the cash-market session on 2016-01-01.
FUTURES_SESSION_CHANGE = date(2016, 1, 1)

Segment = tuple[time, time]
CASH_SESSION: tuple[Segment, ...] = ((time(9, 30), time(11, 30)), (time(13, 0), time(15, 0)))
FUTURES_SESSION_BEFORE_CHANGE: tuple[Segment, ...] = (
    (time(9, 15), time(11, 30)),
    (time(13, 0), time(15, 15)),
)


class CalendarHorizonError(ValueError):
    """The answer lies past the last day the holiday list is known to be complete."""


@lru_cache(maxsize=1)
def _library() -> tuple[tuple[date, ...], date]:
    """Rule-based sessions of the library and its default horizon (end of its last holiday year)."""
    cal = mcal.get_calendar("XSHG")
    days = tuple(d.date() for d in cal.valid_days(_CAL_START.isoformat(), _CAL_END.isoformat()))
    last_year = max(d.year for d in cal.adhoc_holidays)
    return days, date(last_year, 12, 31)


def library_horizon() -> date:
    """Last day of the last year the installed pandas-market-calendars lists holidays for."""
    return _library()[1]


@dataclass(frozen=True)
class TradingCalendar:
    """The XSHG sessions up to ``horizon`` with ``extra_holidays`` removed."""

    horizon: date
    extra_holidays: frozenset[date]
    days: tuple[date, ...]
    day_set: frozenset[date]

    @classmethod
    def build(
        cls, *, extra_holidays: Iterable[date] = (), horizon: date | None = None
    ) -> TradingCalendar:
        lib_days, lib_horizon = _library()
        h = horizon or lib_horizon
        if not _CAL_START <= h <= _CAL_END:
            raise ValueError(f"calendar horizon {h} is outside {_CAL_START}..{_CAL_END}")
        extra = frozenset(extra_holidays)
        days = tuple(d for d in lib_days if d <= h and d not in extra)
        return cls(h, extra, days, frozenset(days))


_LOCK = threading.Lock()
_ACTIVE: TradingCalendar | None = None


def active() -> TradingCalendar:
    """The calendar every function here answers from (the library default until configured)."""
    global _ACTIVE
    cal = _ACTIVE
    if cal is None:
        with _LOCK:
            if _ACTIVE is None:
                _ACTIVE = TradingCalendar.build()
            cal = _ACTIVE
    return cal


def configure(
    *, extra_holidays: Iterable[date] = (), horizon: date | None = None
) -> TradingCalendar:
    """Install the operator's extra holidays and horizon for this process (idempotent)."""
    global _ACTIVE
    extra = frozenset(extra_holidays)
    cur = active()
    if cur.extra_holidays == extra and cur.horizon == (horizon or library_horizon()):
        return cur
    cal = TradingCalendar.build(extra_holidays=extra, horizon=horizon)
    with _LOCK:
        _ACTIVE = cal
    return cal


def horizon() -> date:
    """Last day the holiday list is complete; nothing past it is a known session."""
    return active().horizon


def horizon_warning(today: date, warn_days: int) -> str | None:
    """A warning when ``today`` is within ``warn_days`` of the horizon (or past it), else None."""
    h = horizon()
    left = (h - today).days
    if left > warn_days:
        return None
    if left < 0:
        return (
            f"calendar horizon {h} has passed: no session after it is known; add the official "
            "holidays to calendar.extra_holidays and move calendar.horizon"
        )
    return (
        f"calendar horizon {h} is {left} day(s) away: add next year's official holidays to "
        "calendar.extra_holidays and move calendar.horizon, or runs stop after it"
    )


def _check_span(d: date) -> None:
    if not _CAL_START <= d <= _CAL_END:
        raise ValueError(f"{d} is outside the XSHG calendar span {_CAL_START}..{_CAL_END}")
    if d > horizon():
        raise CalendarHorizonError(
            f"{d} is past the calendar horizon {horizon()}: its holidays are not known yet"
        )


def is_trading_day(d: date) -> bool:
    """True when ``d`` is an XSHG trading day (``CalendarHorizonError`` past the horizon)."""
    _check_span(d)
    return d in active().day_set


def trading_days(start: date, end: date) -> list[date]:
    """XSHG trading days in ``[start, end]``, ascending (none past the horizon)."""
    days = active().days
    lo = bisect.bisect_left(days, start)
    hi = bisect.bisect_right(days, end)
    return list(days[lo:hi])


def all_trading_days() -> tuple[date, ...]:
    """Every trading day the calendar knows (2005 up to the horizon)."""
    return active().days


_ARRAY: list[tuple[TradingCalendar, np.ndarray]] = []  # (calendar, its days), the newest only


def trading_days_array() -> np.ndarray:
    """``all_trading_days()`` as ``datetime64[D]`` (cached per installed calendar)."""
    cal = active()
    got = _ARRAY[0] if _ARRAY else None
    if got is None or got[0] is not cal:
        got = (cal, np.array(cal.days, dtype="datetime64[D]"))
        _ARRAY[:] = [got]
    return got[1]


def consecutive_sessions(ds: list[date]) -> bool:
    """True when ``ds`` are consecutive trading days of the installed calendar, ascending (so
    each is a session and none is past the horizon); True for an empty list.  One bisect and one
    tuple comparison: the common case of a request's check, which says no more than this."""
    if not ds:
        return True
    days = active().days
    i = bisect.bisect_left(days, ds[0])
    return days[i : i + len(ds)] == tuple(ds)


def next_trading_day(d: date) -> date:
    """First trading day strictly after ``d`` (``CalendarHorizonError`` when past the horizon)."""
    days = active().days
    i = bisect.bisect_right(days, d)
    if i >= len(days):
        h = horizon()
        if h < _CAL_END:
            raise CalendarHorizonError(
                f"the session after {d} is past the calendar horizon {h}: unknown until the "
                "official holidays are added (calendar.extra_holidays, calendar.horizon)"
            )
        raise ValueError(f"no XSHG trading day after {d} in the calendar span")
    return days[i]


def previous_trading_day(d: date) -> date:
    """Last trading day strictly before ``d``."""
    days = active().days
    i = bisect.bisect_left(days, d)
    if i == 0:
        raise ValueError(f"no XSHG trading day before {d} in the calendar span")
    return days[i - 1]


def session_segments(kind: InstrumentKind, d: date) -> tuple[Segment, ...]:
    """Continuous-trading segments (exchange time) of ``kind`` on ``d``, lunch break excluded."""
    if kind is InstrumentKind.INDEX_FUTURE and d < FUTURES_SESSION_CHANGE:
        return FUTURES_SESSION_BEFORE_CHANGE
    return CASH_SESSION


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
