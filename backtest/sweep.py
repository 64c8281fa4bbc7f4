"""Parameter sweeps: thresholds x cost levels x execution lags in ONE vectorbt call.

Choosing the best of many variants overstates out-of-sample performance; the report shows how
many variants were tried and marks the pre-registered (configured) variant, not the best one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl

from backtest.config import BacktestConfig, SignalRule, SweepGrid
from backtest.costs import CostProfile
from backtest.engine import session_equity, simulate
from backtest.inputs import BacktestInputError, bars_for_backtest, validate_predictions
from backtest.signals import Layout, layout, schedule, target_positions
from backtest.trading import performance

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
    """Session-close equity (sessions x variants) and orders per variant, one vectorbt call."""
    # long_short: short below the mirror image 1 - t (never above t, so the bands cannot cross)
    t = variants.threshold
    short = np.minimum(1.0 - t, t) if rule.mode == "long_short" else None
    targets = target_positions(p_up, rule, long_above=t, short_below=short)
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
    equity, orders = sweep_equity(
        preds["p_up"].to_numpy(),
        signal_index,
        lay,
        profile,
        rule,
        variants,
        init_cash=config.init_cash,
        intraday=ex.hold == "intraday",
    )
    perf = performance(equity, config.periods_per_year)
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
