"""Directional accuracy of P(up) calls and of the baselines on the same sessions.

Every statistic comes from ``models.metrics`` (Wilson interval, exact binomial and McNemar
tests, ``score_directional``).  A call is "up" when P(up) > 0.5.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

from models.metrics import calls_up, hits, mcnemar_p_value, score_directional, wilson_interval

CALIBRATION_BINS = 10


def _score(labels: np.ndarray, p_up: np.ndarray) -> dict[str, Any]:
    return score_directional(labels, p_up).as_dict() if labels.size else {"n": 0}


def _subset(labels: np.ndarray, correct: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    n = int(mask.sum())
    k = int(correct[mask].sum())
    lo, hi = wilson_interval(k, n)
    return {"n": n, "accuracy": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi}


def confusion(labels: np.ndarray, calls_up: np.ndarray) -> dict[str, int]:
    """Counts of (actual, called) pairs: up_up means actual up, called up."""
    up = labels.astype(bool)
    return {
        "up_up": int(np.sum(up & calls_up)),
        "up_down": int(np.sum(up & ~calls_up)),
        "down_up": int(np.sum(~up & calls_up)),
        "down_down": int(np.sum(~up & ~calls_up)),
    }


def rolling_accuracy(correct: np.ndarray, window: int) -> np.ndarray:
    """Share of correct calls over the trailing ``window`` sessions (NaN until it fills)."""
    c = np.concatenate([[0.0], np.cumsum(correct.astype(float))])
    out = np.full(correct.size, np.nan)
    if correct.size >= window:
        out[window - 1 :] = (c[window:] - c[:-window]) / window
    return out


def calibration(labels: np.ndarray, p_up: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Observed up frequency per P(up) bin (equal-width bins on [0, 1])."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p_up, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        m = which == b
        if m.any():
            out.append(
                {
                    "bin_low": float(edges[b]),
                    "bin_high": float(edges[b + 1]),
                    "n": int(m.sum()),
                    "mean_p_up": float(p_up[m].mean()),
                    "observed_up": float(labels[m].mean()),
                }
            )
    return out


def accuracy_report(
    sessions: list[date],
    labels: np.ndarray,
    p_up: np.ndarray,
    persistence_up: np.ndarray,
    regime_up: np.ndarray,
    *,
    window: int = 60,
) -> dict[str, Any]:
    """Accuracy of the model and of the always-up and persistence baselines, same sessions.

    ``persistence_up``: session t closed above t-1 (the persistence call).  ``regime_up``:
    the index rose over the trailing ``window`` sessions up to t (known at t; NaN when unknown).
    """
    y = np.asarray(labels, dtype=float)
    p = np.asarray(p_up, dtype=float)
    calls = calls_up(p)
    correct = hits(y, p)
    years = np.array([d.year for d in sessions])
    baselines_p = {"always_up": np.ones_like(p), "persistence": persistence_up.astype(float)}
    baselines: dict[str, Any] = {}
    for name, bp in baselines_p.items():
        b_correct = hits(y, bp)
        baselines[name] = {
            **_score(y, bp),
            "mcnemar_p_value_vs_model": mcnemar_p_value(correct, b_correct),
            "per_year": {int(yr): _subset(y, b_correct, years == yr) for yr in np.unique(years)},
        }
    regime = np.asarray(regime_up, dtype=float)
    return {
        "model": _score(y, p),
        "confusion": confusion(y, calls),
        "per_year": {int(yr): _subset(y, correct, years == yr) for yr in np.unique(years)},
        "by_direction": {
            "up_sessions": _subset(y, correct, y > 0.5),
            "down_sessions": _subset(y, correct, y <= 0.5),
        },
        "by_regime": {
            f"up_market_{window}d": _subset(y, correct, regime == 1.0),
            f"down_market_{window}d": _subset(y, correct, regime == 0.0),
        },
        "rolling_window": window,
        "rolling_accuracy": rolling_accuracy(correct, window),
        "calibration": calibration(y, p),
        "baselines": baselines,
        "correct": correct,
    }
