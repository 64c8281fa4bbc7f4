"""vectorbt engine against the per-bar Python loop: same equity to 1e-9 of the capital."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtest.config import BacktestConfig, Execution, SignalRule
from backtest.costs import EtfCosts, Slippage
from backtest.engine import session_equity, simulate
from backtest.inputs import bars_for_backtest, validate_predictions
from backtest.oracle import run_oracle
from backtest.signals import layout, schedule, target_positions

CASES = [
    ("if", Execution(), SignalRule()),
    ("if", Execution(price="next_close", lag=2), SignalRule(mode="long_short")),
    ("if", Execution(hold="intraday"), SignalRule(sizing="confidence")),
    ("etf", Execution(), SignalRule(sizing="confidence")),
    ("etf", Execution(hold="intraday"), SignalRule()),
    ("stock", Execution(price="next_close"), SignalRule(sizing="confidence")),
    ("stock", Execution(hold="intraday", lag=3), SignalRule(long_above=0.4)),
]


@pytest.mark.parametrize(("instrument", "execution", "rule"), CASES)
def test_engine_matches_the_python_loop(
    instrument: str,
    execution: Execution,
    rule: SignalRule,
    synthetic_bars: pl.DataFrame,
    random_preds: pl.DataFrame,
) -> None:
    cfg = BacktestConfig(init_cash=2e6 if instrument != "if" else 2e7)
    profile = cfg.profile(instrument)
    preds = validate_predictions(random_preds, synthetic_bars)
    span = bars_for_backtest(preds, synthetic_bars, execution.lag)
    sessions = span["session"].to_numpy()
    lay = layout(sessions, span["open"].to_numpy(), span["close"].to_numpy(), execution)
    targets = target_positions(preds["p_up"].to_numpy(), rule)
    sched = schedule(
        targets,
        np.searchsorted(sessions, preds["session"].to_numpy()),
        lay,
        np.array([execution.lag]),
        intraday=execution.hold == "intraday",
        t_plus_one=profile.t_plus_one,
    )
    sim = simulate(lay, sched, profile, init_cash=cfg.init_cash)
    oracle = run_oracle(
        lay.price,
        lay.mark,
        sched.target[:, 0],
        lay.session,
        sched.closes_today[:, 0],
        profile,
        init_cash=cfg.init_cash,
    )
    vbt_equity = session_equity(sim, lay)[:, 0]
    np.testing.assert_allclose(
        vbt_equity / cfg.init_cash,
        oracle.equity[lay.session_end] / cfg.init_cash,
        rtol=0,
        atol=1e-9,
    )
    assert len(sim.portfolio.order_records) == oracle.orders > 10
    assert sim.portfolio.order_records["fees"].sum() == pytest.approx(oracle.fees, rel=1e-9)


def test_minimum_commission_binds_and_still_matches(
    synthetic_bars: pl.DataFrame, random_preds: pl.DataFrame
) -> None:
    """Small capital and confidence sizing: many orders below the 5 CNY minimum."""
    profile = EtfCosts(commission=0.0003, slippage=Slippage(bps=3.0))
    preds = validate_predictions(random_preds, synthetic_bars)
    span = bars_for_backtest(preds, synthetic_bars, 1)
    sessions = span["session"].to_numpy()
    lay = layout(sessions, span["open"].to_numpy(), span["close"].to_numpy(), Execution())
    targets = target_positions(preds["p_up"].to_numpy(), SignalRule(sizing="confidence"))
    sched = schedule(
        targets,
        np.searchsorted(sessions, preds["session"].to_numpy()),
        lay,
        np.array([1]),
        intraday=False,
        t_plus_one=True,
    )
    sim = simulate(lay, sched, profile, init_cash=20_000.0)
    fees = sim.portfolio.order_records["fees"]
    assert np.sum(np.isclose(fees, 5.0)) > 10  # the minimum binds on many orders
    assert sim.passes > 1  # and needed the fixed-point passes
    oracle = run_oracle(
        lay.price,
        lay.mark,
        sched.target[:, 0],
        lay.session,
        sched.closes_today[:, 0],
        profile,
        init_cash=20_000.0,
    )
    np.testing.assert_allclose(
        session_equity(sim, lay)[:, 0] / 2e4,
        oracle.equity[lay.session_end] / 2e4,
        rtol=0,
        atol=1e-9,
    )
