"""The one-comparison session check of a forecast request says yes exactly when the full check
(``quant.api.bars._explain_sessions``: calendar span, horizon, trading days, order, gaps) finds
nothing, so the fast path never changes an answer."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.calendar import all_trading_days, consecutive_sessions, horizon
from quant.api.bars import BarsError, _explain_sessions

DAYS = all_trading_days()


def _full_check_passes(ds: list[date]) -> bool:
    try:
        _explain_sessions(ds)
    except BarsError:
        return False
    return True


@st.composite
def session_lists(draw: st.DrawFn) -> list[date]:
    """A run of consecutive sessions, often broken: a day dropped, swapped, repeated or moved to
    a weekend, holiday or past the calendar's ends."""
    n = draw(st.integers(1, 12))
    i = draw(st.integers(0, len(DAYS) - n))
    ds = list(DAYS[i : i + n])
    edit = draw(st.sampled_from(["none", "drop", "swap", "repeat", "shift", "outside", "past"]))
    k = draw(st.integers(0, n - 1))
    if edit == "drop" and n > 2:
        del ds[k if 0 < k < n - 1 else 1]
    elif edit == "swap" and n > 1:
        ds[k], ds[k - 1] = ds[k - 1], ds[k]
    elif edit == "repeat":
        ds.insert(k, ds[k])
    elif edit == "shift":
        ds[k] = ds[k] + timedelta(days=draw(st.integers(-3, 3)))
    elif edit == "outside":
        ds[k] = draw(st.sampled_from([date(1999, 1, 4), date(2031, 1, 2)]))
    elif edit == "past":
        ds[-1] = horizon() + timedelta(days=draw(st.integers(1, 10)))
    return ds


@settings(max_examples=400, deadline=None)
@given(session_lists())
def test_the_fast_session_check_agrees_with_the_full_one(ds: list[date]) -> None:
    assert consecutive_sessions(ds) is _full_check_passes(ds)


def test_consecutive_sessions_by_hand() -> None:
    assert consecutive_sessions([date(2024, 2, 7), date(2024, 2, 8), date(2024, 2, 19)])
    assert not consecutive_sessions([date(2024, 2, 8), date(2024, 2, 12)])  # Spring Festival
    assert not consecutive_sessions([date(2024, 2, 7), date(2024, 2, 19)])  # 2024-02-08 missing
    assert not consecutive_sessions([date(2024, 2, 8), date(2024, 2, 7)])  # descending
    assert not consecutive_sessions([date(2024, 2, 8), date(2024, 2, 8)])  # repeated
    assert consecutive_sessions([])
