"""The XSHG session grid as minute numbers, derived from ``feeds.calendar``.

``feeds.calendar`` defines the sessions (continuous-trading segments per instrument kind and date,
the CFFEX futures-session change); this module turns them into the minute arithmetic that
validation, features, the API and the synthetic market need, so no module restates 09:30 or
15:00.  Minutes are counted after exchange-local midnight; a bar is stamped with its END minute,
so the 1-minute grid of the cash session is 09:31-11:30 and 13:01-15:00.

The ``in_session``/``slot`` arithmetic uses operators only, so the same function evaluates numpy
integer arrays and polars integer expressions (bool times int is an int in both).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import polars as pl

from feeds.calendar import (
    CASH_SESSION,
    EXCHANGE_TZ,
    FUTURES_SESSION_BEFORE_CHANGE,
    FUTURES_SESSION_CHANGE,
    Segment,
    session_segments,
)
from feeds.schema import InstrumentKind

_OFFSET = datetime(2000, 1, 1, tzinfo=EXCHANGE_TZ).utcoffset()
assert _OFFSET is not None
# Asia/Shanghai is UTC+8 all year (no DST since 1991): shifting epoch seconds is exact.
LOCAL_OFFSET_S = int(_OFFSET.total_seconds())
LOCAL_OFFSET = timedelta(seconds=LOCAL_OFFSET_S)
MINUTES_PER_DAY = 24 * 60


def minute_of_day(t: time) -> int:
    """Minutes after midnight of ``t``."""
    return t.hour * 60 + t.minute


def local_minute(epoch_s: Any) -> Any:
    """Exchange-local minute of day of UTC epoch seconds (numpy array or polars expression)."""
    return ((epoch_s + LOCAL_OFFSET_S) // 60) % MINUTES_PER_DAY


def local_date(epoch_s: np.ndarray) -> np.ndarray:
    """Exchange-local date (datetime64[D]) of UTC epoch seconds: the session of an intraday bar."""
    return ((epoch_s + LOCAL_OFFSET_S) // 86400).astype("datetime64[D]")


def in_session(
    mod: Any, minutes: int, am_open: Any, am_close: Any, pm_open: Any, pm_close: Any
) -> Any:
    """True where bar-end minute ``mod`` lies in a session of ``minutes`` bars (lunch excluded).

    Works on numpy arrays and polars expressions; the bounds may be per-row expressions.
    Alignment to the bar length is a separate rule (``mod % minutes == 0``).
    """
    return ((mod >= am_open + minutes) & (mod <= am_close)) | (
        (mod >= pm_open + minutes) & (mod <= pm_close)
    )


def _label(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class SessionGrid:
    """Open and close minutes of the morning and afternoon segments of one session."""

    am_open: int
    am_close: int
    pm_open: int
    pm_close: int  # the session close: the daily bar's stamp and the decision time

    @classmethod
    def of(cls, segments: tuple[Segment, ...]) -> SessionGrid:
        (a0, a1), (p0, p1) = segments
        return cls(*(minute_of_day(t) for t in (a0, a1, p0, p1)))

    @property
    def morning_minutes(self) -> int:
        return self.am_close - self.am_open

    @property
    def trading_minutes(self) -> int:
        return self.morning_minutes + self.pm_close - self.pm_open

    @property
    def lunch_minutes(self) -> int:
        return self.pm_open - self.am_close

    def slots(self, minutes: int) -> int:
        """Bar slots of ``minutes`` length in one session."""
        return self.trading_minutes // minutes

    def bar_ends(self, minutes: int) -> np.ndarray:
        """Minute of day of every bar END on the grid, ascending (int64)."""
        return np.concatenate(
            [
                np.arange(self.am_open + minutes, self.am_close + 1, minutes),
                np.arange(self.pm_open + minutes, self.pm_close + 1, minutes),
            ]
        ).astype(np.int64)

    def on_grid(self, mod: Any, minutes: int) -> Any:
        """``in_session`` with this grid's bounds (numpy array or polars expression)."""
        return in_session(mod, minutes, self.am_open, self.am_close, self.pm_open, self.pm_close)

    def slot(self, mod: Any, minutes: int) -> Any:
        """Grid index of the bar ending at minute ``mod`` (meaningful only where on the grid)."""
        elapsed = mod - self.am_open - self.lunch_minutes * (mod > self.am_close)
        return elapsed // minutes - 1

    def labels(self, minutes: int) -> list[str]:
        """Bar END times ("HH:MM", exchange time) of the grid's slots."""
        return [_label(int(m)) for m in self.bar_ends(minutes)]

    def describe(self, minutes: int) -> str:
        """The bar-end span, e.g. ``09:31-11:30 or 13:01-15:00`` for 1-minute bars."""
        am = f"{_label(self.am_open + minutes)}-{_label(self.am_close)}"
        return f"{am} or {_label(self.pm_open + minutes)}-{_label(self.pm_close)}"


CASH_GRID = SessionGrid.of(CASH_SESSION)  # index, ETF, stock; index futures after the change
FUTURES_GRID_BEFORE_CHANGE = SessionGrid.of(FUTURES_SESSION_BEFORE_CHANGE)


def session_grid(kind: InstrumentKind, d: date) -> SessionGrid:
    """The grid of ``kind`` on session ``d`` (the calendar's segments in minutes)."""
    return SessionGrid.of(session_segments(kind, d))


def grid_exprs(
    kind: pl.Expr, session: pl.Expr, kinds: Iterable[str] | None = None
) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """Per-row (am_open, am_close, pm_open, pm_close) of the grid of (kind, session) columns.

    Every kind whose grid differs from the cash grid before or after the futures-session change
    gets its own branch, read from ``feeds.calendar``.  ``kinds``: the only kinds the rows hold,
    when the caller knows them (the others' branches are left out: a batch of index bars gets
    the cash grid's constants, one kind of futures a test of the session alone).
    """
    branches: list[tuple[pl.Expr, SessionGrid]] = []
    before = FUTURES_SESSION_CHANGE - timedelta(days=1)
    held = None if kinds is None else set(kinds)
    for k in InstrumentKind:
        if held is not None and k.value not in held:
            continue
        one = held is not None and len(held) == 1  # every row is of kind k: no test of it
        for d, when in (
            (before, session < FUTURES_SESSION_CHANGE),
            (FUTURES_SESSION_CHANGE, session >= FUTURES_SESSION_CHANGE),
        ):
            g = session_grid(k, d)
            if g != CASH_GRID:
                branches.append((when if one else (kind == k.value) & when, g))

    def pick(name: str) -> pl.Expr:
        expr: pl.Expr = pl.lit(getattr(CASH_GRID, name))
        for cond, g in branches:
            expr = pl.when(cond).then(getattr(g, name)).otherwise(expr)
        return expr

    am_open, am_close, pm_open, pm_close = (
        pick(n) for n in ("am_open", "am_close", "pm_open", "pm_close")
    )
    return am_open, am_close, pm_open, pm_close
