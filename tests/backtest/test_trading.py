"""Trading figures on a hand-computed equity curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.trading import drawdown, performance, scalar


def test_performance_by_hand() -> None:
    equity = np.array([100.0, 110.0, 99.0, 108.9])  # returns +10%, -10%, +10%
    m = scalar(performance(equity, periods_per_year=4))
    assert m["total_return"] == pytest.approx(0.089)
    assert m["annual_return"] == pytest.approx(1.089 ** (4 / 3) - 1)
    r = np.array([0.1, -0.1, 0.1])
    std = r.std(ddof=1)
    assert m["volatility"] == pytest.approx(std * 2)
    assert m["sharpe"] == pytest.approx(r.mean() / std * 2)
    assert m["sortino"] == pytest.approx(r.mean() / math.sqrt(0.01 / 3) * 2)
    assert m["max_drawdown"] == pytest.approx(99 / 110 - 1)


def test_drawdown_is_zero_at_new_highs() -> None:
    np.testing.assert_allclose(drawdown(np.array([1.0, 2.0, 1.0, 3.0]))[:, 0], [0, 0, -0.5, 0])


def test_flat_equity_has_no_sharpe() -> None:
    m = scalar(performance(np.full(5, 10.0), 244))
    assert m["total_return"] == 0.0 and math.isnan(m["sharpe"])
