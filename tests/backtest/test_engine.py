"""Hand-computed fills and fees on tiny frames (vectorbt style: expected values worked by hand).

Bars of the ``week`` fixture (open, close): 10/10, 11/12, 12.5/13, 12/11, 11/11.5.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from backtest.config import Execution
from backtest.costs import FuturesCosts
from backtest.run import run_backtest
from tests.backtest.conftest import NO_SLIP, bars_frame, preds_frame, tiny_config

P_IN_OUT = [0.9, 0.8, 0.1, 0.2]  # long, long, flat, flat -> one buy, one sell


def test_etf_minimum_commission_next_open_lag_1(week: list[date], week_bars: pl.DataFrame) -> None:
    r = run_backtest(preds_frame(week[:4], P_IN_OUT), week_bars, tiny_config())
    # buy at the open of session 1 (11.0): 3 bp of ~10,000 is 3 CNY < 5, so N + 5 = 10,000
    units = 9995.0 / 11.0
    # sell at the open of session 3 (12.0): 3 bp of 10,903.6 = 3.27 < 5, so 5 CNY again
    final = units * 12.0 - 5.0
    expected = [10_000.0, units * 12.0, units * 13.0, final, final]
    np.testing.assert_allclose(r.equity, expected, rtol=1e-12)
    assert r.trading["fees_paid"] == pytest.approx(10.0, abs=1e-8)  # minimum settles to 1e-10
    assert r.orders["session"].to_list() == [week[1], week[3]]
    assert r.orders["side"].to_list() == ["buy", "sell"]


def test_execution_lag_2_fills_two_sessions_later(
    week: list[date], week_bars: pl.DataFrame
) -> None:
    cfg = tiny_config(execution=Execution(lag=2))
    r = run_backtest(preds_frame(week[:3], P_IN_OUT[:3]), week_bars, cfg)
    units = 9995.0 / 12.5  # bought at the open of session 2
    final = units * 11.0 - 5.0  # sold at the open of session 4
    np.testing.assert_allclose(r.equity, [10_000.0, 10_000.0, units * 13.0, units * 11.0, final])
    assert r.orders["session"].to_list() == [week[2], week[4]]


def test_next_close_fills_at_the_close_of_the_next_session(
    week: list[date], week_bars: pl.DataFrame
) -> None:
    cfg = tiny_config(execution=Execution(price="next_close"))
    r = run_backtest(preds_frame(week[:4], P_IN_OUT), week_bars, cfg)
    units = 9995.0 / 12.0  # bought at the close of session 1
    final = units * 11.0 - 5.0  # sold at the close of session 3
    np.testing.assert_allclose(r.equity, [10_000.0, 9995.0, units * 13.0, final, final])
    np.testing.assert_allclose(r.orders["fill_price"].to_numpy(), [12.0, 11.0])


def test_futures_intraday_pays_the_close_today_rate(
    week: list[date], week_bars: pl.DataFrame
) -> None:
    cfg = tiny_config(instrument="if", init_cash=1e6, execution=Execution(hold="intraday"))
    r = run_backtest(preds_frame(week[:1], [0.9]), week_bars.head(2), cfg)
    units = 1e6 / (1 + 0.23e-4) / 11.0  # open at 11.0, 0.23 bp
    final = units * 12.0 * (1 - 2.3e-4)  # closed at 12.0 the same day, 2.3 bp
    np.testing.assert_allclose(r.equity, [1e6, final], rtol=1e-12)
    assert r.orders["session"].to_list() == [week[1], week[1]]


def test_etf_t_plus_one_sells_on_the_next_session(
    week: list[date], week_bars: pl.DataFrame
) -> None:
    cfg = tiny_config(init_cash=1e6, execution=Execution(hold="intraday"))
    r = run_backtest(preds_frame(week[:2], [0.9, 0.1]), week_bars.head(3), cfg)
    units = 1e6 / 1.0003 / 11.0  # bought at the open of session 1 (3 bp > 5 CNY minimum)
    final = units * 12.5 * (1 - 0.0003)  # T+1: not at that close, but at the next open
    np.testing.assert_allclose(r.equity, [1e6, units * 12.0, final], rtol=1e-12)
    sells = r.orders.filter(pl.col("side") == "sell")["session"].to_list()
    buys = r.orders.filter(pl.col("side") == "buy")["session"].to_list()
    assert sells == [week[2]] and buys == [week[1]]


def test_whole_futures_contracts_leave_cash_idle(week: list[date]) -> None:
    bars = bars_frame(week[:2], [4000, 4000], [4000, 4000])
    cfg = tiny_config(instrument="if", init_cash=1e7)
    cfg = cfg.model_copy(update={"futures": FuturesCosts(slippage=NO_SLIP)})
    r = run_backtest(preds_frame(week[:1], [0.9]), bars, cfg)
    # 1e7 buys 8 contracts of 300 x 4000 = 1.2M (8.33 before rounding); fee 0.23 bp of 9.6M
    assert r.orders["units"].to_list() == [2400.0]
    assert r.trading["fees_paid"] == pytest.approx(9.6e6 * 0.23e-4, rel=1e-12)
    assert r.equity[-1] == pytest.approx(1e7 - 220.8, rel=1e-12)
    assert r.trading["max_contracts"] == 8.0


def _flat_prices(days: list[date]) -> pl.DataFrame:
    return bars_frame(days, [100.0] * len(days), [100.0] * len(days))


@pytest.mark.parametrize(
    ("sell_day", "stamp"), [(date(2023, 8, 25), 0.001), (date(2023, 8, 28), 0.0005)]
)
def test_stock_stamp_duty_switches_on_2023_08_28(sell_day: date, stamp: float) -> None:
    days = [date(2023, 8, 23), date(2023, 8, 24), date(2023, 8, 25), date(2023, 8, 28)]
    # the sell fills one session after the first flat signal
    p = [0.9, 0.1, 0.1] if sell_day == days[2] else [0.9, 0.9, 0.1]
    cfg = tiny_config(instrument="stock", init_cash=1e6)
    r = run_backtest(preds_frame(days[:3], p), _flat_prices(days), cfg)
    bought = 1e6 / (1 + 0.0003 + 0.00001)  # commission + transfer fee, no stamp duty on buys
    expected = bought * (1 - 0.0003 - 0.00001 - stamp)  # flat prices: only costs move equity
    assert r.equity[-1] == pytest.approx(expected, rel=1e-12)
    assert r.orders.filter(pl.col("side") == "sell")["session"].to_list() == [sell_day]


@pytest.mark.parametrize(
    ("days", "close_today"),
    [
        # fees written out by hand from the CFFEX notices (万分之 x = x / 10,000)
        ([date(2015, 8, 24), date(2015, 8, 25)], 0.23 / 10_000),  # before the 2015 notices
        ([date(2015, 9, 7), date(2015, 9, 8)], 23.0 / 10_000),  # the crash-era rate
        ([date(2019, 4, 19), date(2019, 4, 22)], 3.45 / 10_000),
        ([date(2023, 3, 17), date(2023, 3, 20)], 2.3 / 10_000),
    ],
)
def test_futures_close_today_fee_on_its_dated_schedule(
    days: list[date], close_today: float
) -> None:
    bars = bars_frame(days, [10.0, 11.0], [10.0, 12.0])
    cfg = tiny_config(instrument="if", init_cash=1e6, execution=Execution(hold="intraday"))
    r = run_backtest(preds_frame(days[:1], [0.9]), bars, cfg)
    units = 1e6 / (1 + 0.23 / 10_000) / 11.0  # opened at 11.0 on days[1]: ordinary fee
    final = units * 12.0 * (1 - close_today)  # closed at 12.0 the same session
    np.testing.assert_allclose(r.equity, [1e6, final], rtol=1e-12)
