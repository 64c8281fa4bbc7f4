"""From P(up) to target positions, and from decision sessions to the bars where orders fill.

``schedule`` is the ONE place where a signal is shifted to its execution bar.  Everything
downstream (vectorbt simulation, Python oracle, cost arrays) reads its output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtest.config import Execution, SignalRule


def target_size(p_up: np.ndarray, rule: SignalRule) -> np.ndarray:
    """Size of a long or short position per signal: 1, or ``min(1, scale * |2p - 1|)``."""
    p = np.asarray(p_up, dtype=float)
    if rule.sizing == "fixed":
        return np.ones_like(p)
    return np.minimum(1.0, rule.confidence_scale * np.abs(2.0 * p - 1.0))


def target_positions(
    p_up: np.ndarray,
    rule: SignalRule,
    *,
    long_above: np.ndarray | None = None,
    short_below: np.ndarray | None = None,
) -> np.ndarray:
    """Target position per decision session (rows) and variant (columns), in [-1, 1].

    ``long_above`` / ``short_below`` (one value per variant) override the rule's thresholds.
    """
    p = np.asarray(p_up, dtype=float)[:, None]
    hi = np.atleast_1d(rule.long_above if long_above is None else long_above)[None, :]
    lo = np.atleast_1d(rule.short_below if short_below is None else short_below)[None, :]
    size = target_size(p, rule)
    target = np.where(p > hi, size, 0.0)
    if rule.mode == "long_short":
        target = np.where(p < lo, -size, target)
    return target


@dataclass(frozen=True)
class Layout:
    """The bar rows vectorbt simulates.

    carry: one row per session, orders fill at the open or close, positions marked at the close.
    intraday: two rows per session (open, then close), each filled and marked at its own price.
    """

    session: np.ndarray  # datetime64[D] per row
    session_index: np.ndarray  # index of the row's session in the bars
    price: np.ndarray  # order price per row (index points)
    mark: np.ndarray  # valuation price per row
    session_end: np.ndarray  # row index of each session's close mark

    @property
    def n_rows(self) -> int:
        return int(self.price.size)


def layout(
    sessions: np.ndarray, open_: np.ndarray, close: np.ndarray, execution: Execution
) -> Layout:
    """Rows for the simulation of bars ``sessions`` (ascending) under ``execution``."""
    n = sessions.size
    idx = np.arange(n)
    if execution.hold == "intraday":
        price = np.column_stack([open_, close]).ravel()
        return Layout(np.repeat(sessions, 2), np.repeat(idx, 2), price, price, 2 * idx + 1)
    price = open_ if execution.price == "next_open" else close
    return Layout(sessions, idx, np.asarray(price, float), np.asarray(close, float), idx)


@dataclass(frozen=True)
class Schedule:
    """Orders per row and variant: a target position, or NaN for no order."""

    target: np.ndarray  # (rows, variants)
    closes_today: np.ndarray  # bool (rows, variants): order closes a position opened that day


def schedule(
    targets: np.ndarray,
    signal_index: np.ndarray,
    lay: Layout,
    lags: np.ndarray,
    *,
    intraday: bool,
    t_plus_one: bool,
) -> Schedule:
    """Place each decision-session target on the row where it fills.

    ``targets`` (signals x variants) were decided at the close of bar ``signal_index``;
    ``lags`` gives each variant's execution lag in sessions (>= 1).
    """
    lags = np.broadcast_to(np.asarray(lags, dtype=int), (targets.shape[1],))
    if (lags < 1).any():
        raise ValueError("execution lag must be >= 1: a signal cannot trade on its own bar")
    n_sessions = int(lay.session_index[-1]) + 1
    per_session = np.full((n_sessions, targets.shape[1]), np.nan)
    for lag in np.unique(lags):
        cols = np.flatnonzero(lags == lag)
        # To avoid using data from the future: the signal known at the close of bar t fills on
        # bar t + lag (lag >= 1), never on bar t.  This is the only shift in the backtest.
        fill = signal_index + lag
        ok = fill < n_sessions  # signals whose fill bar is past the data are not traded
        per_session[np.ix_(fill[ok], cols)] = targets[ok][:, cols]
    if intraday:
        return _intraday(per_session, t_plus_one)
    # carry: an order only where the target changes (first fill: wherever it is not flat)
    prev = _ffill(per_session)
    prev = np.vstack([np.zeros((1, prev.shape[1])), prev[:-1]])
    prev = np.nan_to_num(prev, nan=0.0)
    target = np.where(np.isnan(per_session) | (per_session == prev), np.nan, per_session)
    # One order per session: a sale can never fall on the session of the buy, so T+1 holds.
    return Schedule(target, np.zeros(target.shape, dtype=bool))


def _ffill(a: np.ndarray) -> np.ndarray:
    idx = np.where(np.isnan(a), 0, np.arange(a.shape[0])[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = a[idx, np.arange(a.shape[1])[None, :]]
    return np.where(np.isnan(a[:1]) & (idx == 0), np.nan, out)


def _intraday(per_session: np.ndarray, t_plus_one: bool) -> Schedule:
    """Enter at the open of the fill session, leave at its close.

    Under T+1 a position bought at the open cannot be sold at that close: the exit is masked and
    the position is carried to the next session, where it is sold at the open if the new target
    is flat, or kept and sold at that session's close otherwise.
    """
    n, k = per_session.shape
    target = np.full((2 * n, k), np.nan)
    closes_today = np.zeros((2 * n, k), dtype=bool)
    w = np.nan_to_num(per_session, nan=0.0)
    if not t_plus_one:
        entry = w != 0
        target[0::2] = np.where(entry, w, np.nan)
        target[1::2] = np.where(entry, 0.0, np.nan)
        closes_today[1::2] = entry
        return Schedule(target, closes_today)
    for c in range(k):
        held = 0.0
        for s in range(n):
            bought = False
            if held == 0.0:
                if w[s, c] != 0.0:
                    target[2 * s, c] = w[s, c]
                    bought = w[s, c] > 0.0
                held = w[s, c]
            elif w[s, c] != held:
                target[2 * s, c] = w[s, c]
                bought = w[s, c] > held
                held = w[s, c]
            if held != 0.0 and not bought:
                target[2 * s + 1, c] = 0.0
                held = 0.0
    return Schedule(target, closes_today)
