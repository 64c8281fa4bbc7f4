"""Cost profiles: dated schedules (stamp duty 2023-08-28), close-today, slippage, lots."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from backtest.config import BacktestConfig
from backtest.costs import (
    EtfCosts,
    FuturesCosts,
    Slippage,
    StockCosts,
    lot_units,
    min_commission,
    proportional_rate,
    slippage_fraction,
    stamp_duty,
)


def _days(*iso: str) -> np.ndarray:
    return np.array(iso, dtype="datetime64[D]")


def test_stamp_duty_halves_on_2023_08_28_for_sells_only() -> None:
    days = _days("2023-08-25", "2023-08-28", "2023-08-25", "2023-08-28")
    sell = np.array([True, True, False, False])
    rates = stamp_duty(StockCosts().stamp_duty, days, sell)
    np.testing.assert_array_equal(rates, [0.001, 0.0005, 0.0, 0.0])


def test_stamp_duty_was_charged_on_buys_before_2008_09_19() -> None:
    days = _days("2008-09-18", "2008-09-19", "2007-06-01")
    rates = stamp_duty(StockCosts().stamp_duty, days, np.array([False, False, True]))
    np.testing.assert_array_equal(rates, [0.001, 0.0, 0.003])


def test_stock_rate_adds_commission_transfer_fee_and_stamp_duty() -> None:
    stock = StockCosts(commission=0.0003)
    days = _days("2022-04-28", "2022-04-29", "2023-08-28")
    rate = proportional_rate(stock, days, np.array([True, True, True]), np.zeros(3, bool))
    # commission + transfer (0.002% then 0.001% from 2022-04-29) + sell stamp duty
    np.testing.assert_allclose(
        rate,
        [0.0003 + 0.00002 + 0.001, 0.0003 + 0.00001 + 0.001, 0.0003 + 0.00001 + 0.0005],
        rtol=0,
        atol=1e-15,
    )


def test_futures_close_today_rate_applies_only_to_same_day_closes() -> None:
    fut = FuturesCosts()
    rate = proportional_rate(
        fut, _days("2024-01-02", "2024-01-02"), np.array([True, True]), np.array([False, True])
    )
    np.testing.assert_array_equal(rate, [0.23e-4, 2.3e-4])
    assert min_commission(fut) == 0.0


def test_etf_rate_has_no_stamp_duty_and_a_minimum() -> None:
    etf = EtfCosts(commission=0.0003)
    rate = proportional_rate(etf, _days("2023-08-25"), np.array([True]), np.array([False]))
    np.testing.assert_array_equal(rate, [0.0003])
    assert min_commission(etf) == 5.0


def test_slippage_in_ticks_and_bps() -> None:
    # IF: 1 tick = 0.2 point at 4000 points = 0.5 bp
    assert slippage_fraction(FuturesCosts(), np.array([4000.0]))[0] == pytest.approx(5e-5)
    # 510300 at index 4000 trades near 4.000 CNY: 1 tick of 0.001 CNY = 2.5 bp
    assert slippage_fraction(EtfCosts(), np.array([4000.0]))[0] == pytest.approx(2.5e-4)
    both = FuturesCosts(slippage=Slippage(bps=1.0, ticks=2.0))
    assert slippage_fraction(both, np.array([4000.0]))[0] == pytest.approx(1e-4 + 1e-4)


def test_whole_futures_contracts_are_multiplier_units() -> None:
    assert lot_units(FuturesCosts()) == 300.0
    assert np.isnan(lot_units(FuturesCosts(whole_contracts=False)))
    assert np.isnan(lot_units(EtfCosts()))


def test_stock_slippage_in_ticks_is_rejected() -> None:
    with pytest.raises(ValidationError, match="bps"):
        StockCosts(slippage=Slippage(ticks=1.0))


def test_unknown_instrument_profile_is_named() -> None:
    with pytest.raises(ValueError, match=r"'bond'.*known"):
        BacktestConfig().profile("bond")
    with pytest.raises(ValidationError):
        BacktestConfig(instrument="bond")  # type: ignore[arg-type]


def test_config_rejects_unknown_fields_and_is_frozen() -> None:
    with pytest.raises(ValidationError):
        BacktestConfig(fees=0.1)  # type: ignore[call-arg]
    cfg = BacktestConfig()
    with pytest.raises(ValidationError):
        cfg.init_cash = 1.0  # type: ignore[misc]
