"""The vectorbt simulation: scheduled targets in, a ``vectorbt.Portfolio`` out.

vectorbt charges ``fees`` (a rate) and ``fixed_fees`` (CNY) per order, but some costs depend on
the order itself: stamp duty only on sells, a minimum commission on small orders.  They are
expressed through vectorbt's inputs: per-bar fee arrays are built from the scheduled order
directions, vectorbt runs, and the arrays are rebuilt from the filled orders (side, notional)
until they agree.  Directions rarely change and the minimum-commission top-up moves by a factor
of about the commission rate per pass, so this converges in two or three passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vectorbt as vbt
from vectorbt.portfolio import nb as pnb
from vectorbt.portfolio.enums import Direction, OrderSide

from backtest.costs import (
    CostProfile,
    FuturesCosts,
    StockCosts,
    lot_units,
    min_commission,
    proportional_rate,
    slippage_fraction,
)
from backtest.signals import Layout, Schedule

MAX_PASSES = 8
_FIXED_TOL = 1e-10  # CNY


class CostResolutionError(RuntimeError):
    """The per-order cost arrays did not settle (should not happen; report it)."""


@dataclass(frozen=True)
class CostArrays:
    """Per-row, per-variant inputs to ``Portfolio.from_orders``."""

    rate: np.ndarray  # proportional fee rate
    fixed: np.ndarray  # CNY top-up to the minimum commission
    slippage: np.ndarray  # fraction of price


@dataclass(frozen=True)
class Simulation:
    portfolio: vbt.Portfolio
    costs: CostArrays
    passes: int


def _commission_rate(profile: CostProfile) -> float:
    return 0.0 if isinstance(profile, FuturesCosts) else profile.commission


def expected_sells(target: np.ndarray) -> np.ndarray:
    """Orders that lower the held target (the guess before vectorbt reports the real sides)."""
    held = np.where(np.isnan(target), np.nan, target)
    idx = np.where(np.isnan(held), 0, np.arange(held.shape[0])[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = np.nan_to_num(held[idx, np.arange(held.shape[1])[None, :]], nan=0.0)
    prev = np.vstack([np.zeros((1, held.shape[1])), filled[:-1]])
    return ~np.isnan(target) & (target < prev)


def initial_costs(
    lay: Layout, sched: Schedule, profile: CostProfile, scale: np.ndarray
) -> CostArrays:
    """Cost arrays from the schedule alone (order sides guessed, no minimum-commission top-up)."""
    days = lay.session[:, None]
    # only stock costs differ by side (stamp duty); skip the guess where it cannot matter
    sells = (
        expected_sells(sched.target) if isinstance(profile, StockCosts) else np.zeros((1, 1), bool)
    )
    rate = proportional_rate(profile, days, sells, sched.closes_today)
    slip = slippage_fraction(profile, lay.price)[:, None] * scale[None, :]
    return CostArrays(rate * scale[None, :], np.zeros(sched.target.shape), slip)


def _compact(a: np.ndarray) -> np.ndarray:
    """One row when every row is equal (vectorbt broadcasts it; saves copying rows x variants)."""
    return a[:1] if a.ndim == 2 and bool(np.all(a == a[:1])) else a


def _run_vbt(
    lay: Layout, target: np.ndarray, costs: CostArrays, granularity: float, init_cash: float
) -> vbt.Portfolio:
    return vbt.Portfolio.from_orders(
        close=lay.mark[:, None],
        price=lay.price[:, None],
        size=target,
        size_type="targetpercent",
        direction="both",
        fees=_compact(costs.rate),
        fixed_fees=_compact(costs.fixed),
        slippage=_compact(costs.slippage),
        size_granularity=granularity,
        init_cash=init_cash,
        max_orders=int(np.count_nonzero(~np.isnan(target))),  # at most one per scheduled target
    )


def order_dependent(profile: CostProfile) -> bool:
    """Costs that depend on the filled order: stamp duty on sells, a minimum commission."""
    if isinstance(profile, FuturesCosts):
        return False  # same rate both sides; close-today is known from the schedule
    return isinstance(profile, StockCosts) or profile.min_commission > 0


def simulate(
    lay: Layout,
    sched: Schedule,
    profile: CostProfile,
    *,
    init_cash: float,
    scale: np.ndarray | None = None,
) -> Simulation:
    """Simulate every variant (column of ``sched.target``) in one ``from_orders`` call.

    ``scale`` multiplies every cost of a variant (commission, minimum, slippage); default 1.
    """
    k = sched.target.shape[1]
    scale = np.ones(k) if scale is None else np.broadcast_to(np.asarray(scale, float), (k,))
    costs = initial_costs(lay, sched, profile, scale)
    comm = _commission_rate(profile) * scale
    min_fee = min_commission(profile) * scale
    gran = lot_units(profile)
    for n in range(1, MAX_PASSES + 1):
        pf = _run_vbt(lay, sched.target, costs, gran, init_cash)
        if not order_dependent(profile):
            return Simulation(pf, costs, n)  # the schedule fixed every rate: nothing to settle
        rec = pf.order_records
        i, c = rec["idx"], rec["col"]
        sell = rec["side"] == OrderSide.Sell
        rate = proportional_rate(profile, lay.session[i], sell, sched.closes_today[i, c]) * scale[c]
        fixed = np.maximum(0.0, min_fee[c] - comm[c] * rec["size"] * rec["price"])
        if np.array_equal(rate, costs.rate[i, c]) and bool(
            np.all(np.abs(fixed - costs.fixed[i, c]) <= _FIXED_TOL)
        ):
            return Simulation(pf, costs, n)
        new_rate, new_fixed = costs.rate.copy(), costs.fixed.copy()
        new_rate[i, c] = rate
        new_fixed[i, c] = fixed
        costs = CostArrays(new_rate, new_fixed, costs.slippage)
    raise CostResolutionError(f"order costs did not settle in {MAX_PASSES} passes")


def session_equity(sim: Simulation, lay: Layout) -> np.ndarray:
    """Portfolio value at each session's close (sessions x variants), CNY.

    vectorbt's own accounting kernels on the order records (``Portfolio.value`` without the
    pandas wrapping, which dominates the time of a 1,000-variant sweep).
    """
    pf = sim.portfolio
    rec = pf.order_records
    shape = (lay.n_rows, pf.wrapper.shape_2d[1])
    col_map = pf.orders.col_mapper.col_map
    assets = pnb.assets_nb(pnb.asset_flow_nb(shape, rec, col_map, Direction.Both))
    init = np.broadcast_to(np.asarray(pf.init_cash, dtype=float), (shape[1],)).copy()
    cash = pnb.cash_nb(pnb.cash_flow_nb(shape, rec, col_map, False), init)
    return (cash + assets * lay.mark[:, None])[lay.session_end]
