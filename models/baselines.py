"""Rule baselines: always-up (majority class of the training window) and persistence.

They see the same windows and splits as the learned models.  Persistence gives hard 0/1
probabilities, so its Brier score and log loss are those of a hard forecaster.
"""

from __future__ import annotations

import numpy as np

from models.features import DAILY_FEATURES, Windows

_RET = DAILY_FEATURES.index("ret")


def always_up(train_labels: np.ndarray, test: Windows) -> np.ndarray:
    """P(up) = the training window's up frequency (calls the majority class every session)."""
    if train_labels.size == 0:
        raise ValueError("always_up needs at least one training label")
    return np.full(len(test), float(np.mean(train_labels)))


def persistence(test: Windows) -> np.ndarray:
    """P(up) = 1 when session t closed up on t-1, else 0 (raw, un-normalised daily return)."""
    return (test.x_daily[:, -1, _RET] > 0).astype(np.float64)
