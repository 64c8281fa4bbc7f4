"""Trading figures from session-close equity curves (one column per variant).

Returns are simple session-close to session-close returns; annualisation uses
``periods_per_year`` sessions (A-shares trade about 244 sessions a year); the risk-free rate is
taken as 0.  Maximum drawdown is reported as a negative fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TINY = 1e-300

# The trading figures of a backtest document, in report order (the report table, the run store).
TRADING_KEYS = (
    "total_return",
    "annual_return",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "turnover_per_year",
    "trades",
    "orders",
    "hit_rate",
    "fees_paid",
    "slippage_paid",
    "costs_paid",
)


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
    std = r.std(axis=0, ddof=1) if r.shape[0] > 1 else np.zeros(e.shape[1])
    return figures(
        Moments(
            first=e[0],
            last=e[-1],
            n_returns=r.shape[0],
            mean=r.mean(axis=0),
            std=std,
            downside=np.sqrt(np.mean(np.minimum(r, 0.0) ** 2, axis=0)),
            max_drawdown=drawdown(e).min(axis=0),
        ),
        periods_per_year,
    )


@dataclass(frozen=True)
class Moments:
    """What the figures need of each equity curve (one value per column)."""

    first: np.ndarray  # equity at the first session
    last: np.ndarray  # equity at the last session
    n_returns: int  # session-to-session returns
    mean: np.ndarray  # mean return
    std: np.ndarray  # standard deviation of returns, ddof 1 (0 with fewer than 2 returns)
    downside: np.ndarray  # root mean square of min(return, 0)
    max_drawdown: np.ndarray  # most negative fall from the running peak


def figures(m: Moments, periods_per_year: int) -> dict[str, np.ndarray]:
    """The figures from the moments (``performance`` and the sweep kernel share this)."""
    n = max(m.n_returns, 1)
    total = m.last / m.first - 1.0
    ann = np.sqrt(periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(m.std > _TINY, m.mean / m.std * ann, np.nan)
        sortino = np.where(m.downside > _TINY, m.mean / m.downside * ann, np.nan)
    return {
        "total_return": total,
        "annual_return": np.power(np.maximum(1.0 + total, 0.0), periods_per_year / n) - 1.0,
        "volatility": m.std * ann,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": m.max_drawdown,
    }


def scalar(metrics: dict[str, np.ndarray], col: int = 0) -> dict[str, float]:
    """One variant's figures as plain floats."""
    return {k: float(v[col]) for k, v in metrics.items()}
