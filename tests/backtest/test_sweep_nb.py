"""The numba sweep kernel against the vectorbt engine and the Python loop: 1e-9 of capital."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtest.config import BacktestConfig, Execution, SignalRule, SweepGrid
from backtest.inputs import bars_for_backtest, validate_predictions
from backtest.oracle import run_oracle_variant
from backtest.signals import Layout, layout, schedule, target_positions
from backtest.sweep import Variants, engine_sweep_equity, run_kernel, sweep_equity
from backtest.trading import figures, performance

GRID = SweepGrid(thresholds=(0.4, 0.5, 0.58), cost_multipliers=(0.0, 1.0, 4.5), lags=(1, 3))
# ten cost levels: the lane kernel's blocks of one signal span two vector groups (8 + 2 lanes)
WIDE = SweepGrid(
    thresholds=(0.45, 0.55), cost_multipliers=tuple(np.linspace(0.0, 4.5, 10)), lags=(1, 3)
)
CASES = [
    ("if", Execution(), SignalRule()),
    ("if", Execution(price="next_close"), SignalRule(mode="long_short")),
    ("if", Execution(hold="intraday"), SignalRule(sizing="confidence")),
    ("etf", Execution(), SignalRule(sizing="confidence")),
    ("etf", Execution(hold="intraday"), SignalRule()),
    ("stock", Execution(price="next_close"), SignalRule(sizing="confidence")),
    ("stock", Execution(hold="intraday"), SignalRule(long_above=0.4)),
]


def _inputs(
    preds: pl.DataFrame, bars: pl.DataFrame, execution: Execution
) -> tuple[np.ndarray, np.ndarray, Layout]:
    preds = validate_predictions(preds, bars)
    span = bars_for_backtest(preds, bars, max(GRID.lags))
    sessions = span["session"].to_numpy()
    lay = layout(sessions, span["open"].to_numpy(), span["close"].to_numpy(), execution)
    return preds["p_up"].to_numpy(), np.searchsorted(sessions, preds["session"].to_numpy()), lay


@pytest.mark.parametrize(("instrument", "execution", "rule"), CASES)
def test_kernel_equals_the_engine_on_every_variant(
    instrument: str,
    execution: Execution,
    rule: SignalRule,
    synthetic_bars: pl.DataFrame,
    random_preds: pl.DataFrame,
) -> None:
    # 2e6 CNY of ETF or stock makes the 5 CNY minimum commission bind on the small orders
    cfg = BacktestConfig(init_cash=2e6 if instrument != "if" else 2e7)
    profile = cfg.profile(instrument)
    p_up, signal_index, lay = _inputs(random_preds, synthetic_bars, execution)
    variants = Variants.grid(GRID)
    args = (p_up, signal_index, lay, profile, rule, variants)
    kw = {"init_cash": cfg.init_cash, "intraday": execution.hold == "intraday"}
    run = run_kernel(*args, **kw)  # type: ignore[arg-type]
    eq, orders = run.equity, run.orders
    ref, ref_orders = engine_sweep_equity(*args, **kw)  # type: ignore[arg-type]
    assert eq.shape == ref.shape == (lay.session_end.size, len(variants))
    assert np.max(np.abs(eq - ref)) <= 1e-9 * cfg.init_cash
    np.testing.assert_array_equal(orders, ref_orders)
    assert orders.min() > 0
    # the costed variants pay: equity at cost level 4.5 trails cost level 0 on the same signals
    free, dear = variants.cost_multiplier == 0.0, variants.cost_multiplier == 4.5
    assert (eq[-1, dear] < eq[-1, free]).all()
    # the figures kept while the bars run equal the figures of the engine's equity curves
    got, want = figures(run.moments, cfg.periods_per_year), performance(ref, cfg.periods_per_year)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(("instrument", "execution", "rule"), CASES[::2])
def test_kernel_equals_the_python_loop(
    instrument: str,
    execution: Execution,
    rule: SignalRule,
    synthetic_bars: pl.DataFrame,
    random_preds: pl.DataFrame,
) -> None:
    cfg = BacktestConfig(init_cash=2e6 if instrument != "if" else 2e7)
    profile = cfg.profile(instrument)
    p_up, signal_index, lay = _inputs(random_preds, synthetic_bars, execution)
    variants = Variants.grid(GRID)
    intraday = execution.hold == "intraday"
    eq, _ = sweep_equity(
        p_up, signal_index, lay, profile, rule, variants, init_cash=cfg.init_cash, intraday=intraday
    )
    t = variants.threshold
    short = np.minimum(1.0 - t, t) if rule.mode == "long_short" else None
    sched = schedule(
        target_positions(p_up, rule, long_above=t, short_below=short),
        signal_index,
        lay,
        variants.lag,
        intraday=intraday,
        t_plus_one=profile.t_plus_one,
    )
    for c in range(len(variants)):
        loop = run_oracle_variant(
            lay, sched, profile, variants.cost_multiplier, c, init_cash=cfg.init_cash
        )
        assert np.max(np.abs(eq[:, c] - loop.equity[lay.session_end])) <= 1e-9 * cfg.init_cash


def test_a_signal_never_moves_equity_on_or_before_its_own_bar(
    synthetic_bars: pl.DataFrame, random_preds: pl.DataFrame
) -> None:
    """Flipping the signal of session j leaves every variant's equity up to session j alone."""
    cfg = BacktestConfig()
    p_up, signal_index, lay = _inputs(random_preds, synthetic_bars, Execution(price="next_close"))
    variants = Variants.grid(GRID)
    profile = cfg.profile("if")
    cash = cfg.init_cash
    eq, _ = sweep_equity(p_up, signal_index, lay, profile, SignalRule(), variants, init_cash=cash)
    j = p_up.size // 2
    flipped = p_up.copy()
    flipped[j] = 1.0 - flipped[j]
    eq2, _ = sweep_equity(
        flipped, signal_index, lay, profile, SignalRule(), variants, init_cash=cash
    )
    np.testing.assert_array_equal(eq[: signal_index[j] + 1], eq2[: signal_index[j] + 1])
    assert not np.array_equal(eq, eq2)


def test_lane_blocks_of_any_width_give_the_same_sweep(
    synthetic_bars: pl.DataFrame, random_preds: pl.DataFrame
) -> None:
    """Variants sharing a signal run in lockstep lanes; splitting them into narrower blocks
    (or one lane each) changes nothing, bit for bit."""
    from backtest.costs import lot_units, min_commission, proportional_rate, slippage_fraction
    from backtest.signals import target_size
    from backtest.sweep_lanes import GROUP, blocks, sweep_lanes_nb

    cfg = BacktestConfig(init_cash=2e6)
    profile, rule = cfg.profile("stock"), SignalRule(mode="long_short", sizing="confidence")
    p_up, signal_index, lay = _inputs(random_preds, synthetic_bars, Execution())
    v = Variants.grid(WIDE)
    no = np.zeros(lay.session.shape, bool)
    lo = np.minimum(1.0 - v.threshold, v.threshold)
    args = (
        p_up,
        target_size(p_up, rule),
        signal_index.astype(np.int64),
        v.threshold,
        lo,
        v.lag.astype(np.int64),
        lay.price,
        lay.mark,
        proportional_rate(profile, lay.session, no, no),
        proportional_rate(profile, lay.session, ~no, no),
        slippage_fraction(profile, lay.price),
        v.cost_multiplier,
        profile.commission,
        min_commission(profile),
        lot_units(profile),
        cfg.init_cash,
        True,
    )
    order, starts, real = blocks(v.lag, v.threshold, lo)
    assert (real == len(WIDE.cost_multipliers)).all()  # one block per signal
    assert (np.diff(starts) % GROUP == 0).all()  # padded to whole vector groups
    # every variant runs in exactly one lane that is not padding
    lanes = np.concatenate([order[s : s + n] for s, n in zip(starts[:-1], real, strict=True)])
    assert np.array_equal(np.sort(lanes), np.arange(len(v)))
    wide = sweep_lanes_nb(*args, order, starts, real)
    for width in (1, 3, 8):
        narrow = sweep_lanes_nb(*args, *blocks(v.lag, v.threshold, lo, width=width))
        for a, b in zip(wide, narrow, strict=True):
            np.testing.assert_array_equal(a, b)
    assert wide[2].min() > 0


@pytest.mark.parametrize(
    ("instrument", "rule"), [("if", SignalRule(mode="long_short")), ("stock", SignalRule())]
)
def test_blocks_wider_than_a_vector_group_equal_the_engine(
    instrument: str, rule: SignalRule, synthetic_bars: pl.DataFrame, random_preds: pl.DataFrame
) -> None:
    cfg = BacktestConfig(init_cash=2e6 if instrument != "if" else 2e7)
    profile = cfg.profile(instrument)
    p_up, signal_index, lay = _inputs(random_preds, synthetic_bars, Execution())
    variants = Variants.grid(WIDE)
    args = (p_up, signal_index, lay, profile, rule, variants)
    run = run_kernel(*args, init_cash=cfg.init_cash)
    ref, ref_orders = engine_sweep_equity(*args, init_cash=cfg.init_cash)
    assert np.max(np.abs(run.equity - ref)) <= 1e-9 * cfg.init_cash
    np.testing.assert_array_equal(run.orders, ref_orders)
    got, want = figures(run.moments, cfg.periods_per_year), performance(ref, cfg.periods_per_year)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)
