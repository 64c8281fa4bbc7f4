"""Bars a broker sends, checked and turned into arrays: XSHG sessions, order, OHLC, history.

Everything here raises ``BarsError`` with a message that names the offending bar; the API turns
it into a 422.  The per-bar rules (OHLC, trading day, session grid) are ``feeds.bar_rules.RULES``,
evaluated here on numpy arrays (first failure); the request rules are this module's: daily bars
must be consecutive XSHG sessions, ascending (the forecaster refuses windows across gaps), of
closed sessions; 1-minute bars are stamped with their END time (UTC offset required), lie on the
cash-market grid of ``feeds.session`` (09:31-11:30, 13:01-15:00 Asia/Shanghai) and belong to a
sent session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from feeds.bar_rules import Failure, first_failure
from feeds.calendar import consecutive_sessions, session_close, trading_days_array
from feeds.schema import InstrumentKind
from feeds.session import CASH_GRID
from models.features_fast import DailyArrays, MinuteArrays
from quant.api.decode import DailyBarIn, MinuteBarIn
from quant.api.schemas import DailyBar, MinuteBar

# the bars as pydantic (schemas) or msgspec (decode) decoded them: the same fields
DailyLike = DailyBar | DailyBarIn
MinuteLike = MinuteBar | MinuteBarIn

GRID = CASH_GRID  # the 1-minute bars a broker sends lie on the cash-market grid


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _trading_days() -> np.ndarray:
    return trading_days_array()  # the installed calendar (extra holidays, horizon)


class BarsError(ValueError):
    """The bars cannot be forecast from (the message says which bar and why)."""


def _ohlc(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, what: str, labels: list[Any]
) -> None:
    _raise_first(
        first_failure({"open": o, "high": h, "low": lo, "close": c}, ("ohlc",)), what, labels
    )


def _raise_first(f: Failure | None, what: str, labels: Sequence[Any]) -> None:
    """``BarsError`` naming the first bar that fails a rule of ``feeds.bar_rules``."""
    if f is not None:
        raise BarsError(f"{what}[{f.index}] ({labels[f.index]}): {f.text}")


def _explain_sessions(sessions: list[date]) -> None:
    """``BarsError`` naming the first sent session that is off the calendar, past its horizon,
    out of order or after a missing session (``check_daily`` calls it when
    ``consecutive_sessions`` says no)."""
    days = _trading_days()
    ordinals = [d.toordinal() for d in sessions]
    sent = np.array(ordinals) - _EPOCH_ORDINAL  # days since 1970 (int64 beats datetime64)
    s = sent.astype("datetime64[D]")
    known = days.view(np.int64)
    first, last = int(known[0]) + _EPOCH_ORDINAL, int(known[-1]) + _EPOCH_ORDINAL
    if ordinals and (min(ordinals) < first or max(ordinals) > last):
        i = int(np.argmax((s < days[0]) | (s > days[-1])))
        raise BarsError(
            f"daily[{i}] ({sessions[i]}): outside the XSHG calendar span {days[0]}..{days[-1]}"
        )
    _raise_first(first_failure({"session": s}, ("calendar",)), "daily", sessions)
    step = np.diff(np.searchsorted(known, sent))
    if not (step == 1).all():  # one test for the usual case; which rule it broke, below
        if (step <= 0).any():
            i = int(np.argmax(step <= 0)) + 1
            raise BarsError(
                f"daily[{i}] ({sessions[i]}): sessions must be strictly ascending "
                f"(previous bar is {sessions[i - 1]})"
            )
        i = int(np.argmax(step > 1)) + 1
        missing = days[np.searchsorted(known, sent[i - 1]) + 1]
        raise BarsError(
            f"daily[{i}] ({sessions[i]}): trading day {missing} is missing; "
            "send consecutive sessions"
        )


def check_daily(
    bars: Sequence[DailyLike],
    warmup: int,
    *,
    needs_amount: bool = False,
    now: datetime | None = None,
) -> DailyArrays:
    """Consecutive XSHG sessions, ascending, OHLC-consistent, at least ``warmup`` of them.

    Every session must have closed by ``now`` (default: the clock; a bar of a session still
    trading is not a daily bar).  ``needs_amount``: the model reads turnover, so every bar must
    carry ``amount``; a model trained without it ignores any amount sent.
    """
    sessions = [b.date for b in bars]
    if not consecutive_sessions(sessions):  # the usual case passes in one comparison
        _explain_sessions(sessions)
    if len(bars) < warmup:
        raise BarsError(
            f"too few daily bars: {len(bars)} sent, the model needs {warmup} consecutive sessions"
        )
    at = now or datetime.now(UTC)
    closes = session_close(InstrumentKind.INDEX, sessions[-1])
    if closes > at:
        now_local = at.astimezone(closes.tzinfo).isoformat(timespec="seconds")
        raise BarsError(
            f"daily[{len(bars) - 1}] ({sessions[-1]}): the session has not closed yet (it closes "
            f"{closes.isoformat()}; now {now_local}); send daily bars of closed sessions only"
        )
    fields = (
        [b.open for b in bars],
        [b.high for b in bars],
        [b.low for b in bars],
        [b.close for b in bars],
        [b.volume for b in bars],
    )  # a list per field: numpy converts a list of per-bar tuples about 1.4x slower
    o, h, lo, c, v = np.array(fields, dtype=np.float64)
    _ohlc(o, h, lo, c, "daily", sessions)
    amounts = [b.amount for b in bars]
    absent = amounts.count(None)
    if needs_amount and absent:
        raise BarsError(
            f"daily[{amounts.index(None)}]: amount (turnover, CNY) is required on every daily "
            "bar: the serving model was trained with the turnover feature (GET /v1/models: "
            "uses_amount)"
        )
    if 0 < absent < len(amounts):
        raise BarsError(f"daily[{amounts.index(None)}]: send amount on every daily bar or on none")
    amount = np.array([np.nan] * len(amounts) if absent else amounts, dtype=np.float64)
    return DailyArrays(sessions, o, h, lo, c, v, amount, absent > 0)


def check_minutes(bars: Sequence[MinuteLike], daily_sessions: list[date]) -> MinuteArrays:
    """1-minute bars on the cash-market grid of sent sessions, strictly ascending."""
    ts = np.array([int(b.ts.timestamp()) for b in bars], dtype=np.int64)
    labels = [b.ts.isoformat() for b in bars]
    for i, b in enumerate(bars):
        if b.ts.microsecond or b.ts.second:
            raise BarsError(f"intraday[{i}] ({labels[i]}): bar end must be on a whole minute")
    if ts.size and (np.diff(ts) <= 0).any():
        i = int(np.argmax(np.diff(ts) <= 0)) + 1
        raise BarsError(
            f"intraday[{i}] ({labels[i]}): bars must be strictly ascending by ts "
            f"(previous bar ends {labels[i - 1]})"
        )
    _raise_first(first_failure({"ts": ts}, ("grid",), grid=GRID, minutes=1), "intraday", labels)
    sent = np.array(daily_sessions, dtype="datetime64[D]")
    m = MinuteArrays(
        ts,
        *(
            np.array([getattr(b, f) for b in bars], dtype=np.float64)
            for f in ("open", "high", "low", "close", "volume")
        ),
    )
    ok = np.isin(m.sessions, sent)
    if not ok.all():
        i = int(np.argmin(ok))
        raise BarsError(
            f"intraday[{i}] ({labels[i]}): session {m.sessions[i]} has no daily bar "
            f"(daily bars cover {daily_sessions[0]}..{daily_sessions[-1]})"
        )
    _ohlc(m.open, m.high, m.low, m.close, "intraday", labels)
    return m


def last_bar_ts(daily: DailyArrays, minutes: MinuteArrays | None) -> datetime:
    """End of the last bar the model sees: the decision session's close (UTC)."""
    close = session_close(InstrumentKind.INDEX, daily.sessions[-1]).astimezone(UTC)
    if minutes is not None and len(minutes):
        close = max(close, datetime.fromtimestamp(int(minutes.ts[-1]), UTC))
    return close
