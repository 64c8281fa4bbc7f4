"""Trading figures from session-close equity curves (one column per variant).

Returns are simple session-close to session-close returns; annualisation uses
``periods_per_year`` sessions (A-shares trade about 244 sessions a year); the risk-free rate is
taken as 0.  Maximum drawdown is reported as a negative fraction.
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-300


def _2d(equity: np.ndarray) -> np.ndarray:
    e = np.asarray(equity, dtype=float)
    return e[:, None] if e.ndim == 1 else e


def returns(equity: np.ndarray) -> np.ndarray:
    e = _2d(equity)
    return e[1:] / e[:-1] - 1.0


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Fall from the running peak at each session (0 at a new high, negative below it)."""
    e = _2d(equity)
    return e / np.maximum.accumulate(e, axis=0) - 1.0


def performance(equity: np.ndarray, periods_per_year: int) -> dict[str, np.ndarray]:
    """Total and annual return, volatility, Sharpe, Sortino, maximum drawdown per column."""
    e = _2d(equity)
    r = returns(e)
    n = max(r.shape[0], 1)
    total = e[-1] / e[0] - 1.0
    mean, std = r.mean(axis=0), r.std(axis=0, ddof=1) if r.shape[0] > 1 else np.zeros(e.shape[1])
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2, axis=0))
    ann = np.sqrt(periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > _TINY, mean / std * ann, np.nan)
        sortino = np.where(downside > _TINY, mean / downside * ann, np.nan)
    return {
        "total_return": total,
        "annual_return": np.power(np.maximum(1.0 + total, 0.0), periods_per_year / n) - 1.0,
        "volatility": std * ann,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": drawdown(e).min(axis=0),
    }


def scalar(metrics: dict[str, np.ndarray], col: int = 0) -> dict[str, float]:
    """One variant's figures as plain floats."""
    return {k: float(v[col]) for k, v in metrics.items()}
