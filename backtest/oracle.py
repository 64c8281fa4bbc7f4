"""A plain per-bar Python loop that simulates one variant: the test oracle and benchmark baseline.

It reads the same scheduled targets as the vectorbt engine (the one shift lives in
``backtest.signals.schedule``) and applies the same fill rules as vectorbt's ``from_orders`` with
``size_type='targetpercent'``: an order trades to ``target * value / price`` units, where value
is cash plus position at the order price; buys fill at ``price * (1 + slippage)``, sells at
``price * (1 - slippage)``; a buy that costs more than the cash buys as much as the cash pays
for.  Unlike the engine it charges the minimum commission exactly, ``max(rate * N, minimum)``,
and reads each order's side directly, so agreement checks the engine's fixed-point fee arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from backtest.costs import (
    CostProfile,
    FuturesCosts,
    lot_units,
    min_commission,
    proportional_rate,
    slippage_fraction,
)
from backtest.signals import Layout, Schedule

_REL = 1e-9  # vectorbt's tolerance when it compares cash needs with cash


@dataclass(frozen=True)
class OracleResult:
    equity: np.ndarray  # value at every row's mark, CNY
    fees: float  # commission, transfer fee, stamp duty paid, CNY
    orders: int


def _floor(size: float, lot: float) -> float:
    return size if math.isnan(lot) else (size // lot) * lot


def run_oracle(
    price: np.ndarray,
    mark: np.ndarray,
    target: np.ndarray,
    days: np.ndarray,
    closes_today: np.ndarray,
    profile: CostProfile,
    *,
    init_cash: float,
    scale: float = 1.0,
) -> OracleResult:
    """Simulate one variant bar by bar; ``target`` is NaN where no order is placed."""
    comm = 0.0 if isinstance(profile, FuturesCosts) else profile.commission * scale
    minimum = min_commission(profile) * scale
    lot = lot_units(profile)
    slip = (slippage_fraction(profile, price) * scale).tolist()
    px_l, mark_l, tgt_l = price.tolist(), mark.tolist(), target.tolist()
    # the dated rates of every bar, for a buy and for a sell (vectorised before the loop)
    buy_rate = (
        scale * proportional_rate(profile, days, np.zeros(days.shape, bool), closes_today)
    ).tolist()
    sell_rate = (
        scale * proportional_rate(profile, days, np.ones(days.shape, bool), closes_today)
    ).tolist()
    cash, pos, fees_paid, orders = float(init_cash), 0.0, 0.0, 0
    equity = [0.0] * len(px_l)
    for r in range(len(px_l)):
        tgt = tgt_l[r]
        if tgt == tgt:  # not NaN: an order on this bar
            px = px_l[r]
            want = tgt * (cash + pos * px) / px - pos
            sell = want < 0
            rate = sell_rate[r] if sell else buy_rate[r]
            if not sell and want > 0:
                adj = px * (1 + slip[r])
                size = _floor(want, lot)
                fee = size * adj * rate + max(0.0, minimum - comm * size * adj)
                need = size * adj + fee
                if need > cash and not math.isclose(need, cash, rel_tol=_REL):
                    # buy what the cash pays for: N (1 + rate) + max(0, min - comm N) = cash
                    notional = cash / (1 + rate)
                    if comm * notional < minimum:
                        notional = (cash - minimum) / (1 + rate - comm)
                    size = _floor(notional / adj, lot)
                    fee = size * adj * rate + max(0.0, minimum - comm * size * adj)
                if size > 0:
                    cash -= size * adj + fee
                    pos += size
                    fees_paid += fee
                    orders += 1
            elif sell:
                adj = px * (1 - slip[r])
                size = _floor(-want, lot)
                fee = size * adj * rate + max(0.0, minimum - comm * size * adj)
                if size > 0:
                    cash += size * adj - fee
                    pos -= size
                    fees_paid += fee
                    orders += 1
        equity[r] = cash + pos * mark_l[r]
    return OracleResult(np.array(equity), fees_paid, orders)


def run_oracle_variant(
    lay: Layout,
    sched: Schedule,
    profile: CostProfile,
    cost_multiplier: np.ndarray,
    c: int,
    *,
    init_cash: float,
) -> OracleResult:
    """``run_oracle`` on variant ``c`` of a sweep's schedule (its targets and cost level)."""
    return run_oracle(
        lay.price,
        lay.mark,
        sched.target[:, c],
        lay.session,
        sched.closes_today[:, c],
        profile,
        init_cash=init_cash,
        scale=float(cost_multiplier[c]),
    )


def oracle_days(sessions: list[date]) -> np.ndarray:
    """Session dates as the datetime64[D] array the cost schedules take."""
    return np.array(sessions, dtype="datetime64[D]")
