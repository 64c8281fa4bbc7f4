"""A seed ensemble: K independently seeded fits of one model, served as one module.

Its probability is the mean of the members' probabilities, then calibrated by temperature
(``logit / T``, T >= 1 fitted on the inner validation slice; T = 1 means none): the temperature
changes how confident the forecast is, never its direction.  The served probability is this
calibrated one.  Same forward signature as its members, so
the training loop's ``predict``, the checkpoint, TorchScript export and the API serve it as they
serve one model.  Members are trained one by one by the one training loop (``models.train``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import Tensor, nn

from models.lstm import LSTMConfig, LSTMForecaster
from models.multiscale import MultiScaleConfig, MultiScaleForecaster

MemberConfig = MultiScaleConfig | LSTMConfig


@dataclass(frozen=True)
class EnsembleConfig:
    member: MemberConfig
    k: int


def build_member(cfg: MemberConfig) -> nn.Module:
    return LSTMForecaster(cfg) if isinstance(cfg, LSTMConfig) else MultiScaleForecaster(cfg)


class EnsembleForecaster(nn.Module):
    def __init__(self, cfg: EnsembleConfig) -> None:
        super().__init__()
        if cfg.k < 1:
            raise ValueError(f"an ensemble needs at least one member, got k={cfg.k}")
        self.cfg = cfg
        self.members = nn.ModuleList(build_member(cfg.member) for _ in range(cfg.k))
        self.temperature: Tensor
        self.register_buffer("temperature", torch.ones(1))

    @classmethod
    def of(cls, members: list[nn.Module]) -> EnsembleForecaster:
        """An ensemble holding these trained members (same config each)."""
        cfgs = {getattr(m, "cfg", None) for m in members}
        cfg = cfgs.pop() if len(cfgs) == 1 else None
        if not isinstance(cfg, MultiScaleConfig | LSTMConfig):
            raise ValueError("ensemble members must share one model config")
        ens = cls(EnsembleConfig(cfg, len(members)))
        for dst, src in zip(ens.members, members, strict=True):
            dst.load_state_dict(src.state_dict())
        return ens.eval()

    def forward(
        self, x_daily: Tensor, x_intra: Tensor, m_intra: Tensor, has_intra: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Calibrated logit of the mean member probability [B], mean gate [B], zeros [B]."""
        ps, gs = [], []
        for m in self.members:
            logit, g, _ = m(x_daily, x_intra, m_intra, has_intra)
            ps.append(torch.sigmoid(logit))
            gs.append(g)
        p = torch.stack(ps).mean(0).clamp(1e-6, 1.0 - 1e-6)
        logit = torch.logit(p) / self.temperature
        return logit, torch.stack(gs).mean(0), torch.zeros_like(logit)

    def penalty(self, gate: Tensor, concentration: Tensor, has_intra: Tensor) -> Tensor:
        return gate.sum() * 0.0  # members are trained one by one, never the ensemble

    def member_probabilities(
        self, x_daily: Tensor, x_intra: Tensor, m_intra: Tensor, has_intra: Tensor
    ) -> Tensor:
        """[K, B] uncalibrated P(up) of each member (the single-seed spread of the report)."""
        with torch.no_grad():
            return torch.stack(
                [torch.sigmoid(m(x_daily, x_intra, m_intra, has_intra)[0]) for m in self.members]
            )


def fit_temperature(
    p: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (1.0, 4.0)
) -> float:
    """Temperature T minimising the log loss of ``sigmoid(logit(p) / T)`` on (p, y).

    T only ever softens (T >= 1): the slice it is fitted on also stopped the members' training
    and, for the fused model, lies inside the linear path's own training window, so it flatters
    the forecasts; sharpening on it would be fitting that flattery.
    """
    z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1.0))
    yy = np.asarray(y, dtype=np.float64)

    def loss(t: float) -> float:
        q = np.clip(1.0 / (1.0 + np.exp(-z / t)), 1e-12, 1 - 1e-12)
        return float(-np.mean(yy * np.log(q) + (1 - yy) * np.log(1 - q)))

    if z.size == 0:
        return 1.0
    r = minimize_scalar(loss, bounds=bounds, method="bounded")
    return float(r.x) if loss(float(r.x)) < loss(1.0) else 1.0
