"""P(up) to targets, and the one shift from decision session to fill bar."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.config import Execution, SignalRule
from backtest.signals import Layout, layout, schedule, target_positions

NAN = np.nan


def _lay(n: int, execution: Execution) -> Layout:
    days = np.datetime64("2024-01-01") + np.arange(n)
    return layout(days, np.arange(n) + 100.0, np.arange(n) + 200.0, execution)


def test_long_flat_long_short_and_confidence_targets() -> None:
    p = np.array([0.9, 0.5, 0.3, 0.6])
    np.testing.assert_array_equal(target_positions(p, SignalRule())[:, 0], [1, 0, 0, 1])
    ls = SignalRule(mode="long_short", long_above=0.55, short_below=0.45)
    np.testing.assert_array_equal(target_positions(p, ls)[:, 0], [1, 0, -1, 1])
    conf = SignalRule(sizing="confidence", confidence_scale=2.0)
    # size = min(1, 2 * |2p - 1|): 0.9 -> 1, 0.6 -> 0.4
    np.testing.assert_allclose(target_positions(p, conf)[:, 0], [1.0, 0.0, 0.0, 0.4])


def test_threshold_grid_gives_one_column_per_variant() -> None:
    p = np.array([0.52, 0.58])
    t = target_positions(p, SignalRule(), long_above=np.array([0.5, 0.55, 0.6]))
    np.testing.assert_array_equal(t, [[1, 0, 0], [1, 1, 0]])


def test_carry_fills_on_the_bar_after_the_signal_and_only_on_changes() -> None:
    lay = _lay(5, Execution())
    targets = np.array([[1.0], [1.0], [0.0], [0.0]])  # decided at the close of bars 0..3
    s = schedule(targets, np.arange(4), lay, np.array([1]), intraday=False, t_plus_one=False)
    np.testing.assert_array_equal(s.target[:, 0], [NAN, 1.0, NAN, 0.0, NAN])
    # next_open: the order price of row 1 is bar 1's open, not bar 0's close
    assert lay.price[1] == 101.0
    s2 = schedule(targets, np.arange(4), lay, np.array([2]), intraday=False, t_plus_one=False)
    np.testing.assert_array_equal(s2.target[:, 0], [NAN, NAN, 1.0, NAN, 0.0])


def test_next_close_fills_at_the_next_close() -> None:
    lay = _lay(3, Execution(price="next_close"))
    s = schedule(
        np.array([[1.0]]), np.array([0]), lay, np.array([1]), intraday=False, t_plus_one=False
    )
    np.testing.assert_array_equal(s.target[:, 0], [NAN, 1.0, NAN])
    assert lay.price[1] == lay.mark[1] == 201.0


def test_signals_filling_past_the_data_are_not_traded() -> None:
    lay = _lay(3, Execution())
    s = schedule(
        np.array([[0.0], [1.0], [1.0]]),
        np.arange(3),
        lay,
        np.array([1]),
        intraday=False,
        t_plus_one=False,
    )
    np.testing.assert_array_equal(s.target[:, 0], [NAN, NAN, 1.0])


def test_lag_zero_is_refused() -> None:
    lay = _lay(3, Execution())
    with pytest.raises(ValueError, match="own bar"):
        schedule(
            np.array([[1.0]]), np.array([0]), lay, np.array([0]), intraday=False, t_plus_one=False
        )


def test_intraday_enters_at_the_open_and_closes_the_same_day() -> None:
    lay = _lay(3, Execution(hold="intraday"))
    s = schedule(
        np.array([[1.0], [1.0]]), np.arange(2), lay, np.array([1]), intraday=True, t_plus_one=False
    )
    # rows: (open, close) of bars 0, 1, 2
    np.testing.assert_array_equal(s.target[:, 0], [NAN, NAN, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(s.closes_today[:, 0], [0, 0, 0, 1, 0, 1])


def test_t_plus_one_masks_the_same_day_exit() -> None:
    lay = _lay(4, Execution(hold="intraday"))
    # bought at the open of bar 1; cannot sell at its close; the next target is flat: sell at
    # the open of bar 2.  Then bought again at the open of bar 3 (held to the end).
    s = schedule(
        np.array([[1.0], [0.0], [1.0]]),
        np.arange(3),
        lay,
        np.array([1]),
        intraday=True,
        t_plus_one=True,
    )
    np.testing.assert_array_equal(s.target[:, 0], [NAN, NAN, 1.0, NAN, 0.0, NAN, 1.0, NAN])
    # kept long: carried overnight, then sold at the close of the next day (bought earlier)
    s2 = schedule(
        np.array([[1.0], [1.0]]), np.arange(2), lay, np.array([1]), intraday=True, t_plus_one=True
    )
    np.testing.assert_array_equal(s2.target[:, 0], [NAN, NAN, 1.0, NAN, NAN, 0.0, NAN, NAN])
