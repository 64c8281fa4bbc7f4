"""Logistic-regression baseline on the daily features of the last few sessions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from models.features import Windows
from models.normalise import NormStats, apply_norm


@dataclass(frozen=True)
class LogisticModel:
    clf: LogisticRegression
    lags: int
    norm: NormStats

    def predict(self, w: Windows) -> np.ndarray:
        """P(up) for each window."""
        return self.clf.predict_proba(design(w, self.lags, self.norm))[:, 1]

    @property
    def linear(self) -> tuple[np.ndarray, float]:
        """(coefficients, intercept): what the fused model's linear path is set to."""
        return self.clf.coef_[0].astype(np.float64), float(self.clf.intercept_[0])


def design(w: Windows, lags: int, norm: NormStats) -> np.ndarray:
    """The last ``lags`` daily tokens, standardised and flattened (the linear path's input)."""
    return apply_norm(w, norm).x_daily[:, -lags:, :].reshape(len(w), -1)


def fit_logistic(
    train: Windows, labels: np.ndarray, norm: NormStats, *, lags: int = 2, c: float = 0.1
) -> LogisticModel:
    """L2 logistic regression on the last ``lags`` daily tokens (standardised by ``norm``)."""
    if len(np.unique(labels)) < 2:
        raise ValueError("logistic regression needs both classes in the training window")
    clf = LogisticRegression(C=c, max_iter=1000)
    clf.fit(design(train, lags, norm), labels)
    return LogisticModel(clf=clf, lags=lags, norm=norm)
