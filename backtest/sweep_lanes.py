"""The carry-execution sweep kernel: variants that share a signal run in lockstep lanes.

Variants that differ only in their cost level (same lag, same thresholds) place their orders
on the same bars with the same targets.  ``sweep_carry_nb`` runs each such block of variants
(up to ``LANES``) over the bars together: the signal scan and the decision to order happen once
per block, and the per-variant work, the order fill with its cost fixed point and the running
figures, is written without branches (selects only) in short loops over the lanes, which the
CPU overlaps and LLVM may vectorise.  The arithmetic is ``backtest.sweep_nb``'s (vectorbt's
``execute_order_nb`` lines, in the same order, with the same tolerances): equity, orders and
figures are bit-identical to the one-variant-at-a-time kernel, which the tests check along
with the engine and the Python loop.  Half the CPU time of that kernel on the benchmark grid.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from vectorbt.utils.math_ import abs_tol as ABS_TOL
from vectorbt.utils.math_ import rel_tol as REL_TOL

from backtest.sweep_nb import _FIXED_TOL, DOWN, FIRST, LAST, M2, MAX_DD, MAX_SETTLE, MEAN, _lots

LANES = 16  # variants of one block at most


@njit(cache=True, error_model="numpy", inline="always")
def _zero(x: float) -> bool:
    """``is_close_nb(x, 0.0)``: NaN and inf are not close to 0, and 1e-9 * |x| < |x|."""
    return abs(x) <= ABS_TOL


@njit(cache=True, error_model="numpy", inline="always")
def _close(a: float, b: float) -> bool:
    """``is_close_nb(a, b)`` without branches."""
    finite = np.isfinite(a) & np.isfinite(b)
    return finite & ((a == b) | (abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)))


@njit(cache=True, error_model="numpy", inline="always")
def _add(a: float, b: float) -> float:
    """``add_nb(a, b)``: 0 when the sum is zero within tolerance."""
    s = a + b
    zero = _close(abs(a), abs(b)) if np.sign(a) != np.sign(b) else _zero(s)
    return 0.0 if zero else s


@njit(cache=True, error_model="numpy", inline="always")
def _less(a: float, b: float) -> bool:
    """``is_less_nb(a, b)``."""
    return (not _close(a, b)) & (a < b)


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
) -> tuple[float, float, float, float, int, bool]:
    """``backtest.sweep_nb._fill`` with both sides and both cash cases computed and selected.

    Returns (cash, position, filled size, fill price, side, infinite): side -1 when nothing was
    filled; ``infinite`` flags the sell of an infinite size that vectorbt refuses.
    """
    value = cash + pos * price if pos != 0 else cash
    cash = 0.0 if _zero(cash) else cash
    pos = 0.0 if _zero(pos) else pos
    value = 0.0 if _zero(value) else value
    size = tgt * value / price - pos
    has_lot = granularity == granularity
    # buy_nb
    adj_b = price * (1 + slippage)
    adj_size = _lots(size, granularity) if has_lot else size
    req = adj_size * adj_b
    total = req + (req * fees + fixed)
    fits = _close(total, cash) | (total < cash)
    max_req = _add(cash, -fixed) / (1 + fees)
    max_acq = max_req / adj_b
    cut = _lots(max_acq, granularity) if has_lot else max_acq
    cut_cash = cut * adj_b
    cut_req = cut_cash + (cut_cash * fees + fixed) if has_lot else cash
    final_size = adj_size if fits else cut
    final_req = total if fits else cut_req
    buy_ok = (
        (cash != 0)
        & (fits | (not (max_req <= 0)))
        & (not _zero(adj_size))
        & (not _less(final_size, 0.0))
    )
    # sell_nb
    adj_s = price * (1 - slippage)
    limit = _lots(-size, granularity) if has_lot else -size
    acq = limit * adj_s
    final_acq = _add(acq, -(acq * fees + fixed))
    sell_ok = (not _zero(limit)) & (not _less(limit, 0.0)) & (not (final_acq < 0))
    is_buy = size > 0
    ok = (not (value <= 0)) & (buy_ok if is_buy else sell_ok)
    new_cash = _add(cash, -final_req) if is_buy else cash + final_acq
    new_pos = _add(pos, final_size) if is_buy else _add(pos, -limit)
    return (
        new_cash if ok else cash,
        new_pos if ok else pos,
        (final_size if is_buy else limit) if ok else 0.0,
        (adj_b if is_buy else adj_s) if ok else np.nan,
        (0 if is_buy else 1) if ok else -1,
        (not is_buy) & np.isinf(size) & (not (value <= 0)),
    )


@njit(cache=True, parallel=True, error_model="numpy")
def sweep_lanes_nb(
    p_up: np.ndarray,  # (signals,) P(up) at each decision session
    size: np.ndarray,  # (signals,) target size when the signal is long or short
    signal_index: np.ndarray,  # (signals,) row of each decision session, ascending
    long_above: np.ndarray,  # (variants,)
    short_below: np.ndarray,  # (variants,) -inf for long/flat
    lags: np.ndarray,  # (variants,) >= 1
    price: np.ndarray,  # (rows,) order price; one row per session
    mark: np.ndarray,  # (rows,) valuation price at the session close
    buy_rate: np.ndarray,  # (rows,) proportional cost of a buy at cost level 1
    sell_rate: np.ndarray,  # (rows,)
    slippage: np.ndarray,  # (rows,) fraction of price at cost level 1
    scale: np.ndarray,  # (variants,) cost multiplier
    comm: float,
    min_fee: float,
    granularity: float,
    init_cash: float,
    want_equity: bool,
    order: np.ndarray,  # (variants,) variant of each lane, block by block
    block_start: np.ndarray,  # (blocks + 1,) first lane of each block; same lag and thresholds
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``backtest.sweep_nb``'s carry sweep by blocks: equity, moments, orders, unsettled orders
    and refused infinite sells per variant."""
    n_rows, n_sig, k = price.size, p_up.size, long_above.size
    equity = np.empty((k, n_rows if want_equity else 0))
    stats = np.empty((k, 6))
    orders = np.zeros(k, dtype=np.int64)
    unsettled = np.zeros(k, dtype=np.int64)
    infinite = np.zeros(k, dtype=np.int64)
    for b in prange(block_start.size - 1):
        b0 = block_start[b]
        m = block_start[b + 1] - b0
        lane = order[b0 : b0 + m]
        lag, hi, lo = lags[lane[0]], long_above[lane[0]], short_below[lane[0]]
        s = scale[lane]
        cash, pos = np.full(m, init_cash), np.zeros(m)
        rate, fixed, done = np.empty(m), np.empty(m), np.empty(m, np.bool_)
        new_cash, new_pos, filled = np.empty(m), np.empty(m), np.zeros(m, np.bool_)
        n_ord, n_uns, n_inf = np.zeros(m, np.int64), np.zeros(m, np.int64), np.zeros(m, np.int64)
        last, peak, v = np.empty(m), np.empty(m), np.empty(m)
        mean, m2, down, dd = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
        held, j = 0.0, 0
        for r in range(n_rows):
            tgt = np.nan
            while j < n_sig and signal_index[j] + lag <= r:
                if signal_index[j] + lag == r:
                    p = p_up[j]
                    tgt = size[j] if p > hi else (-size[j] if p < lo else 0.0)
                j += 1
            if tgt == tgt and tgt != held:  # an order in every lane (same signal)
                held = tgt
                px, br, sr, sp = price[r], buy_rate[r], sell_rate[r], slippage[r]
                for w in range(m):
                    rate[w], fixed[w], done[w] = br * s[w], 0.0, False
                for _ in range(MAX_SETTLE):  # the cost fixed point of sweep_nb._order
                    for w in range(m):
                        sw, open_ = s[w], not done[w]
                        c, q, sz, fp, side, inf = _fill(
                            cash[w], pos[w], tgt, px, rate[w], fixed[w], sp * sw, granularity
                        )
                        ok = side >= 0
                        next_rate = sr * sw if side == 1 else br * sw
                        next_fixed = max(0.0, min_fee * sw - comm * sw * sz * fp)
                        same = (next_rate == rate[w]) & (abs(next_fixed - fixed[w]) <= _FIXED_TOL)
                        new_cash[w] = c if open_ else new_cash[w]
                        new_pos[w] = q if open_ else new_pos[w]
                        filled[w] = ok if open_ else filled[w]
                        n_inf[w] += inf & open_
                        rate[w] = next_rate if open_ else rate[w]
                        fixed[w] = next_fixed if open_ else fixed[w]
                        done[w] = done[w] | (not ok) | same
                    if done.all():
                        break
                for w in range(m):
                    cash[w], pos[w] = new_cash[w], new_pos[w]
                    n_ord[w] += filled[w]
                    n_uns[w] += not done[w]
            mk = mark[r]
            for w in range(m):
                v[w] = cash[w] + pos[w] * mk if pos[w] != 0 else cash[w]
            if r == 0:
                last[:] = v
                peak[:] = v
                stats[lane, FIRST] = v
            else:  # sweep_nb._track as selects
                for w in range(m):
                    x, lw, pk, dw = v[w], last[w], peak[w], dd[w]
                    ret = 0.0 if x == lw else x / lw - 1.0
                    delta = ret - mean[w]
                    mean[w] += delta / r
                    m2[w] += delta * (ret - mean[w])
                    down[w] = down[w] + ret * ret if ret < 0 else down[w]
                    last[w] = x
                    deeper = (x < pk) & (x < pk * (1.0 + dw) * (1.0 + 1e-12))
                    dd[w] = min(dw, x / pk - 1.0) if deeper else dw
                    peak[w] = x if x >= pk else pk
            if want_equity:
                for w in range(m):
                    equity[lane[w], r] = v[w]
        stats[lane, LAST] = last
        stats[lane, MEAN] = mean
        stats[lane, M2] = m2
        stats[lane, DOWN] = down
        stats[lane, MAX_DD] = dd
        orders[lane] = n_ord
        unsettled[lane] = n_uns
        infinite[lane] = n_inf
    return equity, stats, orders, unsettled, infinite


def blocks(
    lags: np.ndarray, long_above: np.ndarray, short_below: np.ndarray, width: int = LANES
) -> tuple[np.ndarray, np.ndarray]:
    """Variants grouped by (lag, long_above, short_below), in blocks of at most ``width``:
    (variant of each lane, first lane of each block plus the end)."""
    order = np.lexsort((short_below, long_above, lags))
    keys = np.stack([lags[order].astype(float), long_above[order], short_below[order]])
    new = np.ones(order.size, bool)
    new[1:] = (keys[:, 1:] != keys[:, :-1]).any(axis=0)
    starts, run = [], 0
    for i in range(order.size):
        if new[i] or run == width:
            starts.append(i)
            run = 0
        run += 1
    starts.append(order.size)
    return order.astype(np.int64), np.array(starts, np.int64)
