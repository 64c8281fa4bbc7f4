"""Parameter sweeps: thresholds x cost levels x execution lags in one parallel numba kernel.

Choosing the best of many variants overstates out-of-sample performance; the report shows how
many variants were tried and marks the pre-registered (configured) variant, not the best one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl

from backtest.config import BacktestConfig, SignalRule, SweepGrid
from backtest.costs import (
    CostProfile,
    FuturesCosts,
    lot_units,
    min_commission,
    proportional_rate,
    slippage_fraction,
)
from backtest.engine import CostResolutionError, session_equity, simulate
from backtest.inputs import BacktestInputError, bars_for_backtest, validate_predictions
from backtest.signals import Layout, layout, schedule, target_positions, target_size
from backtest.sweep_lanes import blocks, sweep_lanes_nb
from backtest.sweep_nb import (
    DOWN,
    FIRST,
    LAST,
    M2,
    MAX_DD,
    MAX_SETTLE,
    MEAN,
    simulate_schedule_nb,
)
from backtest.trading import Moments, figures

SELECTION_WARNING = (
    "Choosing the best of {n} variants overstates out-of-sample performance: the best row is "
    "the maximum of {n} noisy estimates. The marked variant is the configured one, fixed before "
    "the sweep."
)


@dataclass(frozen=True)
class Variants:
    threshold: np.ndarray
    cost_multiplier: np.ndarray
    lag: np.ndarray

    @classmethod
    def grid(cls, grid: SweepGrid) -> Variants:
        rows = list(itertools.product(grid.thresholds, grid.cost_multipliers, grid.lags))
        t, c, lag = (np.array(x) for x in zip(*rows, strict=True))
        return cls(t.astype(float), c.astype(float), lag.astype(int))

    def __len__(self) -> int:
        return int(self.threshold.size)


@dataclass(frozen=True)
class SweepResult:
    table: pl.DataFrame  # one row per variant; ``chosen`` marks the configured one
    n_variants: int
    warning: str


def _mirror(rule: SignalRule, t: np.ndarray) -> np.ndarray | None:
    # long_short: short below the mirror image 1 - t (never above t, so the bands cannot cross)
    return np.minimum(1.0 - t, t) if rule.mode == "long_short" else None


def engine_sweep_equity(
    p_up: np.ndarray,
    signal_index: np.ndarray,
    lay: Layout,
    profile: CostProfile,
    rule: SignalRule,
    variants: Variants,
    *,
    init_cash: float,
    intraday: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The same as ``sweep_equity`` through the vectorbt engine (one ``from_orders`` call)."""
    t = variants.threshold
    targets = target_positions(p_up, rule, long_above=t, short_below=_mirror(rule, t))
    sched = schedule(
        targets,
        signal_index,
        lay,
        variants.lag,
        intraday=intraday,
        t_plus_one=profile.t_plus_one,
    )
    sim = simulate(lay, sched, profile, init_cash=init_cash, scale=variants.cost_multiplier)
    orders = np.bincount(sim.portfolio.order_records["col"], minlength=len(variants))
    return session_equity(sim, lay), orders


@dataclass(frozen=True)
class KernelRun:
    equity: np.ndarray  # (sessions, variants) session-close equity; (0, variants) if not asked
    moments: Moments  # what the trading figures need, per variant
    orders: np.ndarray  # filled orders per variant


def run_kernel(
    p_up: np.ndarray,
    signal_index: np.ndarray,
    lay: Layout,
    profile: CostProfile,
    rule: SignalRule,
    variants: Variants,
    *,
    init_cash: float,
    intraday: bool = False,
    want_equity: bool = True,
) -> KernelRun:
    """Every variant through the numba sweep kernels, in parallel: ``backtest.sweep_lanes`` for
    carry execution, ``backtest.sweep_nb`` for intraday schedules.

    Equal to ``engine_sweep_equity`` (the vectorbt engine) to rounding; the tests hold it there.
    """
    t = variants.threshold
    days = lay.session
    no = np.zeros(days.shape, bool)
    buy = proportional_rate(profile, days, no, no)
    sell = proportional_rate(profile, days, ~no, no)
    slip = slippage_fraction(profile, lay.price)
    scale = variants.cost_multiplier.astype(float)
    comm = 0.0 if isinstance(profile, FuturesCosts) else profile.commission
    costs = (comm, min_commission(profile), lot_units(profile), float(init_cash), want_equity)
    if intraday:
        targets = target_positions(p_up, rule, long_above=t, short_below=_mirror(rule, t))
        sched = schedule(
            targets, signal_index, lay, variants.lag, intraday=True, t_plus_one=profile.t_plus_one
        )
        futures = isinstance(profile, FuturesCosts)
        ct_rate = proportional_rate(profile, days, no, ~no) if futures else buy
        closes = sched.closes_today if futures else np.zeros(sched.target.shape, bool)
        is_end = np.zeros(lay.n_rows, bool)
        is_end[lay.session_end] = True
        equity, stats, orders, unsettled = simulate_schedule_nb(
            np.asfortranarray(sched.target),
            np.asfortranarray(closes),
            is_end,
            lay.price,
            lay.mark,
            buy,
            sell,
            ct_rate,
            slip,
            scale,
            *costs,
        )
    else:
        lo = np.full(t.shape, -np.inf) if (m := _mirror(rule, t)) is None else m
        lag = variants.lag.astype(np.int64)
        equity, stats, orders, unsettled, infinite = sweep_lanes_nb(
            np.asarray(p_up, float),
            target_size(p_up, rule),
            np.asarray(signal_index, np.int64),
            t.astype(float),
            lo,
            lag,
            lay.price,
            lay.mark,
            buy,
            sell,
            slip,
            scale,
            *costs,
            *blocks(lag, t.astype(float), lo),
        )
        if infinite.any():
            raise ValueError("Attempt to go in short direction infinitely")
    if unsettled.any():
        raise CostResolutionError(f"order costs did not settle in {MAX_SETTLE} passes")
    n_ret = lay.session_end.size - 1
    moments = Moments(
        first=stats[:, FIRST],
        last=stats[:, LAST],
        n_returns=n_ret,
        mean=stats[:, MEAN] if n_ret > 0 else np.full(len(variants), np.nan),
        std=np.sqrt(stats[:, M2] / (n_ret - 1)) if n_ret > 1 else np.zeros(len(variants)),
        downside=np.sqrt(stats[:, DOWN] / n_ret) if n_ret > 0 else np.full(len(variants), np.nan),
        max_drawdown=stats[:, MAX_DD],
    )
    return KernelRun(equity.T, moments, orders)


def sweep_equity(
    p_up: np.ndarray,
    signal_index: np.ndarray,
    lay: Layout,
    profile: CostProfile,
    rule: SignalRule,
    variants: Variants,
    *,
    init_cash: float,
    intraday: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Session-close equity (sessions x variants) and orders per variant (the numba kernel)."""
    run = run_kernel(
        p_up, signal_index, lay, profile, rule, variants, init_cash=init_cash, intraday=intraday
    )
    return run.equity, run.orders


def run_sweep(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    config: BacktestConfig,
    *,
    instrument: str | None = None,
    grid: SweepGrid | None = None,
) -> SweepResult:
    """Every variant of ``grid`` (default: the configured one) on the same sessions."""
    profile = config.profile(instrument)
    rule, ex = config.rule, config.execution
    if rule.mode == "long_short" and not profile.short_allowed:
        raise BacktestInputError(f"instrument {instrument!r} cannot be sold short (long_short)")
    variants = Variants.grid(grid or config.sweep)
    preds = validate_predictions(predictions, bars)
    # all variants share the span of the largest lag, so their figures cover the same sessions
    span = bars_for_backtest(preds, bars, int(variants.lag.max()))
    sessions = span["session"].to_numpy()
    lay = layout(sessions, span["open"].to_numpy(), span["close"].to_numpy(), ex)
    signal_index = np.searchsorted(sessions, preds["session"].to_numpy())
    run = run_kernel(
        preds["p_up"].to_numpy(),
        signal_index,
        lay,
        profile,
        rule,
        variants,
        init_cash=config.init_cash,
        intraday=ex.hold == "intraday",
        want_equity=False,
    )
    perf, orders = figures(run.moments, config.periods_per_year), run.orders
    chosen = (
        np.isclose(variants.threshold, rule.long_above)
        & np.isclose(variants.cost_multiplier, 1.0)
        & (variants.lag == ex.lag)
    )
    table = pl.DataFrame(
        {
            "threshold": variants.threshold,
            "cost_multiplier": variants.cost_multiplier,
            "lag": variants.lag,
            **{k: v for k, v in perf.items()},
            "orders": orders,
            "chosen": chosen,
        }
    ).with_columns((pl.col("sharpe") == pl.col("sharpe").max()).alias("best_sharpe"))
    n = len(variants)
    return SweepResult(table, n, SELECTION_WARNING.format(n=n))
