"""The carry-execution sweep kernel: variants that share a signal run in lockstep lanes.

Variants that differ only in their cost level (same lag, same thresholds) place their orders
on the same bars with the same targets.  ``sweep_lanes_nb`` runs each such block of variants
(up to ``LANES``, padded to whole vector groups of ``GROUP`` lanes) over the bars together: the
signal scan and the decision to order happen once per block, and the per-variant work, the
order fill with its cost fixed point and the running figures, is written without branches
(selects only) in loops over the lanes that LLVM vectorises (AVX-512: one instruction per
group of 8 lanes).  What makes them vectorise: the lane state lives in one array of tiles at
constant offsets, every load happens on every lane, and the group width is not a compile-time
constant (a constant 8-trip loop is unrolled into scalar code first).

The arithmetic is ``backtest.sweep_nb``'s (vectorbt's ``execute_order_nb`` lines, in the same
order, with the same tolerances): equity and orders are bit-identical to the
one-variant-at-a-time kernel, which the tests check along with the engine and the Python loop.
The figure moments are sums of returns and squared returns (not Welford's updates), so a block
whose lanes are all flat skips the bars without an order; mean and standard deviation agree
with the engine's figures to far below the tests' 1e-9.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from vectorbt.utils.math_ import abs_tol as ABS_TOL
from vectorbt.utils.math_ import rel_tol as REL_TOL

from backtest.sweep_nb import _FIXED_TOL, DOWN, FIRST, LAST, M2, MAX_DD, MAX_SETTLE, MEAN, _lots

LANES = 16  # variants of one block at most
GROUP = 8  # lanes of one vector step: blocks are padded to a multiple of it


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


# The state of a block: one float64 array of tiles, one tile per GROUP lanes, one row of GROUP
# values per field below (flags 0.0 / 1.0, counts as floats): every lane loop reads and writes
# one array at constant offsets, which LLVM vectorises (separate arrays defeat its alias checks).
# per lane: cash, position, cost multiplier; per order: cash and position with vectorbt's
# zeroing, units, sale proceeds, buy and sell fill prices, side, whether it fills at all, the
# rate and fixed cost of the next pass, done, filled; counts of orders, unsettled and refused
# orders; the figures: last and peak value, value, sum and sum of squares of returns, sum of
# squared losses, maximum drawdown
(CASH, POS, SCALE, C0, Q0, UNITS, ACQ, ADJ_B, ADJ_S, BUY, LIVE, RATE, FIXED, DONE, FILLED) = (
    i * GROUP for i in range(15)
)
(N_ORD, N_UNS, N_INF, PREV, PEAK, V, S1, S2, SQ_DOWN, DD) = (i * GROUP for i in range(15, 25))
TILE = 25 * GROUP  # one tile: every field of GROUP lanes


@njit(cache=True, error_model="numpy", inline="always")
def _cut(
    c: float, fixed: float, fees: float, adj_b: float, granularity: float, has_lot: bool
) -> tuple[float, float, bool]:
    """``buy_nb`` when the order costs more than the cash: the size the cash pays for, its
    cost, and whether it is a fill at all."""
    max_req = _add(c, -fixed) / (1 + fees)
    max_acq = max_req / adj_b
    x = _lots(max_acq, granularity) if has_lot else max_acq
    xc = x * adj_b
    cost = xc + (xc * fees + fixed) if has_lot else c
    return x, cost, (not (max_req <= 0)) & (not _less(x, 0.0))


@njit(cache=True, error_model="numpy", inline="always")
def _settle(
    c: float,
    q: float,
    units: float,
    acq: float,
    is_buy: bool,
    live: bool,
    fits: bool,
    total: float,
    cut: float,
    cut_cost: float,
    cut_ok: bool,
    fees: float,
    fixed: float,
) -> tuple[bool, float, float, float]:
    """The end of ``buy_nb`` / ``sell_nb`` at rate ``fees`` and fixed cost ``fixed``:
    (filled, cash, position, filled size); both sides share their two ``add_nb`` calls."""
    size_b = units if fits else cut
    # buy: cash - cost; sell: cash + (proceeds - fees), where a negative net is no fill
    x, y = (c, -(total if fits else cut_cost)) if is_buy else (acq, -(acq * fees + fixed))
    net = _add(x, y)
    ok = live & ((fits | cut_ok) if is_buy else (not (net < 0)))
    cash = net if is_buy else c + net
    pos = _add(q, size_b if is_buy else -units)
    return ok, cash, pos, (size_b if is_buy else units) if ok else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _cost_pass(
    c: float,
    q: float,
    units: float,
    acq: float,
    is_buy: bool,
    live: bool,
    ab: float,
    as_: float,
    fees: float,
    fixed: float,
    sw: float,
    br: float,
    sr: float,
    min_fee: float,
    comm: float,
    granularity: float,
    has_lot: bool,
) -> tuple[bool, float, float, float, float, bool]:
    """One pass of the cost fixed point (``sweep_nb``) at rate ``fees`` and fixed cost ``fixed``:
    (filled, cash, position, the next pass's rate and fixed cost, whether they are these)."""
    req = units * ab
    total = req + (req * fees + fixed)
    fits = _close(total, c) | (total < c)
    cut, cut_cost, cut_ok = _cut(c, fixed, fees, ab, granularity, has_lot)
    ok, nc, nq, filled = _settle(
        c, q, units, acq, is_buy, live, fits, total, cut, cut_cost, cut_ok, fees, fixed
    )
    fp = ab if is_buy else as_
    next_rate = sr * sw if ok & (not is_buy) else br * sw
    next_fixed = max(0.0, min_fee * sw - comm * sw * filled * fp)
    same = (next_rate == fees) & (abs(next_fixed - fixed) <= _FIXED_TOL)
    return ok, nc, nq, next_rate, next_fixed, same


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
    order: np.ndarray,  # (lanes,) variant of each lane, block by block (see ``blocks``)
    block_start: np.ndarray,  # (blocks + 1,) first lane of each block, multiples of GROUP
    n_real: np.ndarray,  # (blocks,) lanes of each block that are not padding
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``backtest.sweep_nb``'s carry sweep by blocks: equity, moments, orders, unsettled orders
    and refused infinite sells per variant."""
    n_rows, n_sig, k = price.size, p_up.size, long_above.size
    equity = np.empty((k, n_rows if want_equity else 0))
    stats = np.empty((k, 6))
    orders = np.zeros(k, dtype=np.int64)
    unsettled = np.zeros(k, dtype=np.int64)
    infinite = np.zeros(k, dtype=np.int64)
    has_lot = granularity == granularity
    n_ret = max(n_rows - 1, 1)
    for b in prange(block_start.size - 1):
        b0 = block_start[b]
        n_lanes = block_start[b + 1] - b0
        n_grp, real = n_lanes // GROUP, n_real[b]
        # == GROUP (n_lanes is a multiple of it), but not a constant to LLVM: a loop of a
        # constant 8 trips is unrolled into scalar code before the loop vectoriser runs
        width = n_lanes // n_grp
        lane = order[b0 : b0 + n_lanes]
        lag, hi, lo = lags[lane[0]], long_above[lane[0]], short_below[lane[0]]
        st = np.zeros(n_grp * TILE)
        for w in range(n_lanes):
            o = (w // GROUP) * TILE + w % GROUP
            st[o + CASH], st[o + SCALE] = init_cash, scale[lane[w]]
        held, j, flat = 0.0, 0, True
        for r in range(n_rows):
            tgt = np.nan
            while j < n_sig and signal_index[j] + lag <= r:
                if signal_index[j] + lag == r:
                    p = p_up[j]
                    tgt = size[j] if p > hi else (-size[j] if p < lo else 0.0)
                j += 1
            traded = tgt == tgt and tgt != held
            if traded:  # an order in every lane (same signal)
                held = tgt
                px, br, sr, sp = price[r], buy_rate[r], sell_rate[r], slippage[r]
                n_done, n_flat = 0, 0
                for g in range(n_grp):  # execute_order_nb, and the first pass of the costs
                    for u in range(width):
                        # every field loaded up front, then selects: LLVM vectorises no loop
                        # with a load that only some lanes reach
                        o = g * TILE + u
                        c, q, sw = st[o + CASH], st[o + POS], st[o + SCALE]
                        n_ord, n_inf = st[o + N_ORD], st[o + N_INF]
                        value = c + q * px if q != 0 else c
                        c = 0.0 if _zero(c) else c
                        q = 0.0 if _zero(q) else q
                        value = 0.0 if _zero(value) else value
                        want = tgt * value / px - q
                        is_buy = want > 0
                        units = want if is_buy else -want  # >= 0 (or NaN): never less than 0
                        units = _lots(units, granularity) if has_lot else units
                        ab, as_ = px * (1 + sp * sw), px * (1 - sp * sw)
                        acq, fees, fixed = units * as_, br * sw, 0.0
                        refused = (not is_buy) & np.isinf(want) & (not (value <= 0))
                        # fills at all: value > 0, and a buy with cash, or a sell of whole units
                        live = (not (value <= 0)) & (not _zero(units)) & ((c != 0) | (not is_buy))
                        ok, nc, nq, next_rate, next_fixed, same = _cost_pass(
                            c, q, units, acq, is_buy, live, ab, as_, fees, fixed, sw, br, sr,
                            min_fee, comm, granularity, has_lot,
                        )  # fmt: skip
                        done = (not ok) | same
                        nc, nq = (nc, nq) if ok else (c, q)
                        st[o + CASH], st[o + POS], st[o + N_INF] = nc, nq, n_inf + refused
                        st[o + N_ORD], st[o + FILLED] = n_ord + (ok & done), ok
                        st[o + C0], st[o + Q0], st[o + UNITS], st[o + ACQ] = c, q, units, acq
                        st[o + ADJ_B], st[o + ADJ_S], st[o + BUY], st[o + LIVE] = (
                            ab,
                            as_,
                            is_buy,
                            live,
                        )
                        st[o + RATE], st[o + FIXED], st[o + DONE] = next_rate, next_fixed, done
                        n_done += done
                        n_flat += nq == 0
                for _ in range(1, MAX_SETTLE):  # the rest of the cost fixed point (sweep_nb)
                    if n_done == n_lanes:
                        break
                    n_done, n_flat = 0, 0
                    for g in range(n_grp):
                        for u in range(width):
                            o = g * TILE + u
                            c, q, units, acq = st[o + C0], st[o + Q0], st[o + UNITS], st[o + ACQ]
                            ab, as_, is_buy, live = (
                                st[o + ADJ_B],
                                st[o + ADJ_S],
                                st[o + BUY],
                                st[o + LIVE],
                            )
                            fees, fixed, sw, open_ = (
                                st[o + RATE],
                                st[o + FIXED],
                                st[o + SCALE],
                                st[o + DONE] == 0,
                            )
                            was_cash, was_pos, n_ord, was_ok = (
                                st[o + CASH],
                                st[o + POS],
                                st[o + N_ORD],
                                st[o + FILLED],
                            )
                            is_buy, live = is_buy != 0, live != 0
                            ok, nc, nq, next_rate, next_fixed, same = _cost_pass(
                                c, q, units, acq, is_buy, live, ab, as_, fees, fixed, sw, br, sr,
                                min_fee, comm, granularity, has_lot,
                            )  # fmt: skip
                            done = (not open_) | (not ok) | same
                            # an open lane takes this pass's fill; a lane that is done keeps it
                            nc, nq = (nc, nq) if ok else (c, q)
                            nc, nq = (nc, nq) if open_ else (was_cash, was_pos)
                            st[o + CASH], st[o + POS] = nc, nq
                            st[o + FILLED] = ok if open_ else was_ok
                            st[o + N_ORD] = n_ord + ok if open_ & done else n_ord
                            st[o + RATE] = next_rate if open_ else fees
                            st[o + FIXED] = next_fixed if open_ else fixed
                            st[o + DONE] = done
                            n_done += done
                            n_flat += nq == 0
                if n_done < n_lanes:  # unsettled: the last pass's fill stands, as in sweep_nb
                    for g in range(n_grp):
                        for u in range(width):
                            o = g * TILE + u
                            open_ = st[o + DONE] == 0
                            st[o + N_ORD] += st[o + FILLED] if open_ else 0.0
                            st[o + N_UNS] += open_
                flat = n_flat == n_lanes
            if r == 0 or traded or not flat:  # flat lanes without an order: value, figures stay
                mk, deeper = mark[r], 0
                for g in range(n_grp):  # sweep_nb._track as selects, with sums for the moments
                    for u in range(width):
                        o = g * TILE + u
                        c, q = st[o + CASH], st[o + POS]
                        x = c + q * mk if q != 0 else c
                        lw, pk, dw = st[o + PREV], st[o + PEAK], st[o + DD]
                        lw, pk = (x, x) if r == 0 else (lw, pk)
                        ret = 0.0 if x == lw else x / lw - 1.0
                        st[o + S1] += ret
                        st[o + S2] += ret * ret
                        st[o + SQ_DOWN] += ret * ret if ret < 0 else 0.0
                        deeper += (x < pk) & (x < pk * (1.0 + dw) * (1.0 + 1e-12))
                        st[o + V], st[o + PREV] = x, x
                        st[o + PEAK] = x if x >= pk else pk
                if deeper:  # some lane is at a new low: x < peak, so its peak did not move
                    for g in range(n_grp):
                        for u in range(width):
                            o = g * TILE + u
                            x, pk, dw = st[o + V], st[o + PEAK], st[o + DD]
                            low = (x < pk) & (x < pk * (1.0 + dw) * (1.0 + 1e-12))
                            st[o + DD] = min(dw, x / pk - 1.0) if low else dw
            if want_equity:
                for w in range(real):
                    equity[lane[w], r] = st[(w // GROUP) * TILE + w % GROUP + V]
            if r == 0:
                for w in range(real):
                    stats[lane[w], FIRST] = st[(w // GROUP) * TILE + w % GROUP + V]
        for w in range(real):
            o, i = (w // GROUP) * TILE + w % GROUP, lane[w]
            s1 = st[o + S1]
            mean = s1 / n_ret
            stats[i, LAST], stats[i, MEAN] = st[o + PREV], mean
            stats[i, M2] = max(0.0, st[o + S2] - s1 * mean)
            stats[i, DOWN], stats[i, MAX_DD] = st[o + SQ_DOWN], st[o + DD]
            orders[i], unsettled[i] = int(st[o + N_ORD]), int(st[o + N_UNS])
            infinite[i] = int(st[o + N_INF])
    return equity, stats, orders, unsettled, infinite


def blocks(
    lags: np.ndarray, long_above: np.ndarray, short_below: np.ndarray, width: int = LANES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Variants grouped by (lag, long_above, short_below), in blocks of at most ``width``, each
    padded to a multiple of ``GROUP`` lanes with copies of its first variant (a padding lane
    runs that variant again and is never written back): (variant of each lane, first lane of
    each block plus the end, lanes of each block that are not padding)."""
    order = np.lexsort((short_below, long_above, lags))
    keys = np.stack([lags[order].astype(float), long_above[order], short_below[order]])
    at = np.arange(order.size)
    new = np.ones(order.size, bool)
    new[1:] = (keys[:, 1:] != keys[:, :-1]).any(axis=0)
    run = at - np.maximum.accumulate(np.where(new, at, 0))  # place in its signal's run
    block = np.cumsum(run % width == 0) - 1
    real = np.bincount(block)
    padded = -(-real // GROUP) * GROUP
    starts = np.concatenate([[0], np.cumsum(padded)])
    first = order[np.flatnonzero(run % width == 0)]
    lanes = np.repeat(first, padded)  # padding: copies of the block's first variant
    lanes[starts[block] + run % width] = order
    return lanes.astype(np.int64), starts.astype(np.int64), real.astype(np.int64)
