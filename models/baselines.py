"""Rule baselines: always-up, majority (of the training window) and persistence.

They see the same windows and splits as the learned models.  ``always_up`` and persistence give
hard 0/1 probabilities, so their Brier score and log loss are those of a hard forecaster;
``majority`` forecasts the training window's up frequency (and so calls its majority class).
"""

from __future__ import annotations

import numpy as np

from models.features import DAILY_FEATURES, Windows

_RET = DAILY_FEATURES.index("ret")


def always_up(test: Windows) -> np.ndarray:
    """P(up) = 1 on every session: literally always up."""
    return np.ones(len(test))


def majority(train_labels: np.ndarray, test: Windows) -> np.ndarray:
    """P(up) = the training window's up frequency (calls the majority class every session)."""
    if train_labels.size == 0:
        raise ValueError("majority needs at least one training label")
    return np.full(len(test), float(np.mean(train_labels)))


def persistence(test: Windows) -> np.ndarray:
    """P(up) = 1 when session t closed up on t-1, else 0 (raw, un-normalised daily return)."""
    return (test.x_daily[:, -1, _RET] > 0).astype(np.float64)
