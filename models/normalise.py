"""Per-feature standardisation fitted on a training window only and saved with the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.features import DAILY_FEATURES, SESSION_FEATURES, Windows

# Session summaries exist only where intraday bars do: their statistics are taken over present
# tokens, the presence flag is left as it is, and absent tokens stay exactly zero.
_SESS = slice(len(DAILY_FEATURES), len(DAILY_FEATURES) + len(SESSION_FEATURES))
_FLAG = len(DAILY_FEATURES) + SESSION_FEATURES.index("intraday_present")


@dataclass(frozen=True)
class NormStats:
    """Mean and standard deviation of each daily and intraday feature (training window)."""

    daily_mean: np.ndarray
    daily_std: np.ndarray
    intra_mean: np.ndarray
    intra_std: np.ndarray

    def as_dict(self) -> dict[str, list[float]]:
        return {k: [float(v) for v in getattr(self, k)] for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> NormStats:
        return cls(**{k: np.asarray(d[k], dtype=np.float32) for k in cls.__dataclass_fields__})


def fit_norm(train: Windows) -> NormStats:
    """Statistics of the training windows (intraday over present bars only)."""
    xd = train.x_daily.reshape(-1, train.x_daily.shape[-1]).astype(np.float64)
    xi = train.x_intra[train.m_intra]
    if xi.shape[0] == 0:  # no intraday bars in the training window: identity transform
        xi = np.zeros((1, train.x_intra.shape[-1]), dtype=np.float32)
    mean, std = xd.mean(0), xd.std(0) + 1e-6
    present = xd[xd[:, _FLAG] > 0]
    if present.shape[0] > 1:
        mean[_SESS], std[_SESS] = present[:, _SESS].mean(0), present[:, _SESS].std(0) + 1e-6
    else:
        mean[_SESS], std[_SESS] = 0.0, 1.0
    mean[_FLAG], std[_FLAG] = 0.0, 1.0
    return NormStats(
        daily_mean=mean.astype(np.float32),
        daily_std=std.astype(np.float32),
        intra_mean=xi.mean(0).astype(np.float32),
        intra_std=(xi.std(0) + 1e-6).astype(np.float32),
    )


def apply_norm(w: Windows, s: NormStats) -> Windows:
    """Standardised copy of ``w``; absent intraday bars stay exactly zero."""
    xi = (w.x_intra - s.intra_mean) / s.intra_std
    xd = (w.x_daily - s.daily_mean) / s.daily_std
    xd[..., _SESS] *= w.x_daily[..., _FLAG : _FLAG + 1] > 0
    return Windows(
        sessions=w.sessions,
        x_daily=xd.astype(np.float32),
        x_intra=np.where(w.m_intra[..., None], xi, 0.0).astype(np.float32),
        m_intra=w.m_intra,
        has_intra=w.has_intra,
    )
