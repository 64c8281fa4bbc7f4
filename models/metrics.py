"""Directional-accuracy statistics shared by the evaluation and backtest reports.

All p-values are exact where cheap (binomial, McNemar's exact binomial form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

_EPS = 1e-12
UP_ABOVE = 0.5  # the direction rule: P(up) above this calls 'up'; a flat 0.5 calls 'down'


def calls_up(p_up: npt.ArrayLike) -> np.ndarray:
    """The one direction rule, vectorised: which forecasts call 'up' (P(up) > 0.5)."""
    return np.asarray(p_up, dtype=float) > UP_ABOVE


def hits(labels: npt.ArrayLike, p_up: npt.ArrayLike) -> np.ndarray:
    """Whether each forecast's call was right (labels are 1 for up, 0 for down)."""
    return calls_up(p_up) == (np.asarray(labels, dtype=float) > 0.5)


def direction(p_up: float) -> Literal["up", "down"]:
    """The call of one forecast: 'up' when P(up) > 0.5, else 'down'."""
    return "up" if p_up > UP_ABOVE else "down"


def confidence(p_up: float) -> float:
    """How far the forecast is from a coin flip, in [0, 1]: ``|p_up - 0.5| * 2``."""
    return abs(p_up - 0.5) * 2


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (0, 1 when n == 0)."""
    if n == 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_p_value(successes: int, n: int, p0: float = 0.5) -> float:
    """Two-sided exact binomial test of accuracy against ``p0`` (1.0 when n == 0)."""
    if n == 0:
        return 1.0
    return float(stats.binomtest(successes, n, p0, alternative="two-sided").pvalue)


def mcnemar_p_value(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar test: do two classifiers err on the same sessions at different rates?"""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(only_a, discordant, 0.5, alternative="two-sided").pvalue)


def auc(labels: np.ndarray, p_up: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties get average rank); NaN with one class only."""
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(np.asarray(p_up, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels: np.ndarray, p_up: np.ndarray) -> float:
    """Mean binary cross-entropy of P(up) (probabilities clipped to [1e-12, 1 - 1e-12])."""
    y = np.asarray(labels, dtype=float)
    if y.size == 0:
        return float("nan")
    pc = np.clip(np.asarray(p_up, dtype=float), _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)))


@dataclass(frozen=True)
class DirectionalScore:
    """Classification figures of P(up) forecasts against realised directions."""

    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    p_value: float
    balanced_accuracy: float
    auc: float
    brier: float
    log_loss: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def score_directional(labels: np.ndarray, p_up: np.ndarray) -> DirectionalScore:
    """Score P(up) forecasts; a forecast calls 'up' by the direction rule (``calls_up``)."""
    y = np.asarray(labels, dtype=float)
    p = np.asarray(p_up, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and p_up {p.shape} differ in shape")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p_up must lie in [0, 1] without NaN")
    n = int(y.size)
    pred = calls_up(p)
    correct = hits(y, p)
    k = int(correct.sum())
    lo, hi = wilson_interval(k, n)
    pos = y > 0.5
    recalls = [float(np.mean(pred[m] == pos[m])) for m in (pos, ~pos) if m.any()]
    return DirectionalScore(
        n=n,
        accuracy=k / n if n else float("nan"),
        ci_low=lo,
        ci_high=hi,
        p_value=binomial_p_value(k, n),
        balanced_accuracy=float(np.mean(recalls)) if recalls else float("nan"),
        auc=auc(y, p),
        brier=float(np.mean((p - y) ** 2)) if n else float("nan"),
        log_loss=log_loss(y, p),
    )
