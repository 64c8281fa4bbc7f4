"""A numba kernel for many-variant sweeps: one variant per thread, no order records, no pandas.

``backtest.engine`` (vectorbt ``Portfolio.from_orders``) stays the engine for single runs and
reports; a 1,000-variant sweep only needs each variant's session-close equity, so this kernel
runs each variant's bars in one pass and keeps cash and position in registers:

- every order runs the lines of vectorbt's ``execute_order_nb`` / ``buy_nb`` / ``sell_nb``
  that a ``targetpercent`` order of ``simulate_from_orders_nb`` reaches (direction both,
  slippage, size granularity), with vectorbt's float tolerances, so fills are vectorbt's fills
  (the tests hold the kernel to the engine and to the Python loop on every variant);
- the costs that depend on the filled order (stamp duty on sells, the minimum-commission
  top-up) are settled per order by the same fixed point the engine runs over whole passes
  (rate from the filled side, ``fixed = max(0, minimum - commission * size * price)``);
- carry execution builds the schedule on the fly: the target decided at signal ``j`` fills on
  row ``signal_index[j] + lag`` (lag >= 1, the shift of ``backtest.signals.schedule``), and an
  order is placed only where the target changes (``backtest.sweep_lanes`` runs it, variants
  sharing a signal in lockstep); intraday schedules are given precomputed
  (``simulate_schedule_nb`` here).

Equity is ``cash + position * mark`` at each session's close, as ``engine.session_equity``.

Speed (``python -m benchmarks backtest``): a warm 1,000-variant sweep is all kernel (the Python
around it, costs, block layout and figures, takes about a millisecond); ``backtest.sweep_lanes``
says how its carry kernel is vectorised.  The per-order helpers are inlined
into the kernels at numba's IR level (``inline="always"``: 20% less CPU than LLVM calls), and
the kernels divide without Python's zero-division checks (``error_model="numpy"``: a divisor
here is a price, a lot, a positive cost factor or a session count; a zero equity gives inf as
in the engine's figures).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from vectorbt.portfolio.enums import OrderSide
from vectorbt.utils.math_ import add_nb, is_close_nb, is_close_or_less_nb, is_less_nb

MAX_SETTLE = 8  # passes of the per-order cost fixed point (the engine's MAX_PASSES)
_FIXED_TOL = 1e-10  # CNY, the engine's tolerance


@njit(cache=True, error_model="numpy", inline="always")
def _lots(size: float, lot: float) -> float:
    """``size // lot * lot`` (vectorbt's rounding to whole lots) without numba's slow ``//``."""
    q = np.floor(size / lot)
    if q * lot > size:  # size / lot rounded up onto a whole number
        q -= 1.0
    return q * lot


@njit(cache=True, error_model="numpy", inline="always")
def _fill(
    cash: float,
    pos: float,
    tgt: float,
    price: float,
    fees: float,
    fixed: float,
    slippage: float,
    granularity: float,
) -> tuple[float, float, float, float, int]:
    """vectorbt's ``execute_order_nb`` for the one order kind a sweep places.

    Target percent of value at the order price, direction both, no cash locking, no size
    limits: the lines of ``execute_order_nb``, ``buy_nb`` and ``sell_nb`` that this order kind
    reaches, in their order, with vectorbt's tolerances (``is_close_nb``, ``add_nb``).  Returns
    (cash, position, filled size, fill price, side), side -1 when nothing was filled.
    """
    value = cash + pos * price if pos != 0 else cash
    if is_close_nb(cash, 0.0):
        cash = 0.0
    if is_close_nb(pos, 0.0):
        pos = 0.0
    if is_close_nb(value, 0.0):
        value = 0.0
    if value <= 0:
        return cash, pos, 0.0, np.nan, -1
    size = tgt * value / price - pos
    if size > 0:  # buy_nb
        adj_price = price * (1 + slippage)
        if cash == 0:
            return cash, pos, 0.0, np.nan, -1
        adj_size = size
        if not np.isnan(granularity):
            adj_size = _lots(adj_size, granularity)
        req_cash = adj_size * adj_price
        total_req_cash = req_cash + (req_cash * fees + fixed)
        if is_close_or_less_nb(total_req_cash, cash):
            final_size, final_req_cash = adj_size, total_req_cash
        else:
            max_req_cash = add_nb(cash, -fixed) / (1 + fees)
            if max_req_cash <= 0:
                return cash, pos, 0.0, np.nan, -1
            max_acq_size = max_req_cash / adj_price
            if not np.isnan(granularity):
                final_size = _lots(max_acq_size, granularity)
                new_req_cash = final_size * adj_price
                final_req_cash = new_req_cash + (new_req_cash * fees + fixed)
            else:
                final_size, final_req_cash = max_acq_size, cash
        if is_close_nb(adj_size, 0.0) or is_less_nb(final_size, 0.0):
            return cash, pos, 0.0, np.nan, -1
        return (
            add_nb(cash, -final_req_cash),
            add_nb(pos, final_size),
            final_size,
            adj_price,
            OrderSide.Buy,
        )
    adj_price = price * (1 - slippage)  # sell_nb
    size_limit = -size
    if np.isinf(size_limit):
        raise ValueError("Attempt to go in short direction infinitely")
    if not np.isnan(granularity):
        size_limit = _lots(size_limit, granularity)
    if is_close_nb(size_limit, 0.0) or is_less_nb(size_limit, 0.0):
        return cash, pos, 0.0, np.nan, -1
    acq_cash = size_limit * adj_price
    final_acq_cash = add_nb(acq_cash, -(acq_cash * fees + fixed))
    if final_acq_cash < 0:
        return cash, pos, 0.0, np.nan, -1
    return cash + final_acq_cash, add_nb(pos, -size_limit), size_limit, adj_price, OrderSide.Sell


@njit(cache=True, error_model="numpy", inline="always")
def _order(
    cash: float,
    pos: float,
    tgt: float,
    price: float,
    buy_rate: float,
    sell_rate: float,
    slippage: float,
    comm: float,
    min_fee: float,
    granularity: float,
) -> tuple[float, float, bool, bool]:
    """One order with its costs settled: (cash, position, filled, settled) after it."""
    rate, fixed = buy_rate, 0.0
    for _ in range(MAX_SETTLE):
        new_cash, new_pos, size, fill_price, side = _fill(
            cash, pos, tgt, price, rate, fixed, slippage, granularity
        )
        if side < 0:
            return new_cash, new_pos, False, True
        new_rate = sell_rate if side == OrderSide.Sell else buy_rate
        new_fixed = max(0.0, min_fee - comm * size * fill_price)
        if new_rate == rate and abs(new_fixed - fixed) <= _FIXED_TOL:
            return new_cash, new_pos, True, True
        rate, fixed = new_rate, new_fixed
    return new_cash, new_pos, True, False


# per-variant figures kept while the bars run (see ``backtest.trading.Moments``)
FIRST, LAST, MEAN, M2, DOWN, MAX_DD = range(6)


@njit(cache=True, error_model="numpy", inline="always")
def _track(stats: np.ndarray, n: int, v: float, peak: float) -> float:
    """Add session-close value ``v`` (the ``n``-th, from 0) to ``stats``; returns the new peak."""
    if n == 0:
        stats[FIRST], stats[MEAN], stats[M2], stats[DOWN], stats[MAX_DD] = v, 0.0, 0.0, 0.0, 0.0
        stats[LAST] = v
        return v
    r = 0.0 if v == stats[LAST] else v / stats[LAST] - 1.0  # flat sessions: no division
    delta = r - stats[MEAN]  # Welford's running mean and sum of squared deviations
    stats[MEAN] += delta / n
    stats[M2] += delta * (r - stats[MEAN])
    if r < 0:
        stats[DOWN] += r * r
    stats[LAST] = v
    if v >= peak:
        return v
    if v < peak * (1.0 + stats[MAX_DD]) * (1.0 + 1e-12):  # a candidate for a deeper drawdown
        stats[MAX_DD] = min(stats[MAX_DD], v / peak - 1.0)
    return peak


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_schedule_nb(
    target: np.ndarray,  # (rows, variants) NaN: no order
    closes_today: np.ndarray,  # (rows, variants) bool
    session_end: np.ndarray,  # (rows,) bool: the row of a session's close mark
    price: np.ndarray,
    mark: np.ndarray,
    buy_rate: np.ndarray,
    sell_rate: np.ndarray,
    close_today_rate: np.ndarray,  # (rows,) rate of an order that closes today's position
    slippage: np.ndarray,
    scale: np.ndarray,
    comm: float,
    min_fee: float,
    granularity: float,
    init_cash: float,
    want_equity: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same simulation over a precomputed schedule (intraday execution)."""
    n_rows, k = target.shape
    n_end = int(session_end.sum())
    equity = np.empty((k, n_end if want_equity else 0))
    stats = np.empty((k, 6))
    orders = np.zeros(k, dtype=np.int64)
    unsettled = np.zeros(k, dtype=np.int64)
    for c in prange(k):
        s = scale[c]
        cash, pos, n, peak = init_cash, 0.0, 0, 0.0
        st = stats[c]
        for r in range(n_rows):
            tgt = target[r, c]
            if tgt == tgt:
                ct = closes_today[r, c]
                b = close_today_rate[r] if ct else buy_rate[r]
                sl = close_today_rate[r] if ct else sell_rate[r]
                cash, pos, filled, settled = _order(
                    cash,
                    pos,
                    tgt,
                    price[r],
                    b * s,
                    sl * s,
                    slippage[r] * s,
                    comm * s,
                    min_fee * s,
                    granularity,
                )
                orders[c] += filled
                unsettled[c] += not settled
            if session_end[r]:
                v = cash + pos * mark[r] if pos != 0 else cash
                peak = _track(st, n, v, peak)
                if want_equity:
                    equity[c, n] = v
                n += 1
    return equity, stats, orders, unsettled
