"""LSTM baseline over the same inputs as the attention model (daily and intraday tokens).

Two single-layer LSTMs, one per scale; the intraday summary is zeroed when a sample has no
intraday bars.  Same forward signature as ``MultiScaleForecaster`` so one training loop serves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class LSTMConfig:
    daily_features: int
    intraday_features: int
    hidden: int = 16
    dropout: float = 0.1
    attend_len: int = 0  # last daily tokens read (0: all)


class LSTMForecaster(nn.Module):
    def __init__(self, cfg: LSTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.daily = nn.LSTM(cfg.daily_features, cfg.hidden, batch_first=True)
        self.intra = nn.LSTM(cfg.intraday_features, cfg.hidden, batch_first=True)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.hidden, 1)

    def forward(
        self, x_daily: Tensor, x_intra: Tensor, m_intra: Tensor, has_intra: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Logit of P(up) [B]; the gate and concentration slots are zeros (no gate here)."""
        xd = x_daily[:, -self.cfg.attend_len :] if self.cfg.attend_len else x_daily
        _, (hd, _) = self.daily(xd)
        # Absent bars are zero tokens already; the final state of an all-absent window is dropped.
        _, (hi, _) = self.intra(x_intra * m_intra[..., None].to(x_intra.dtype))
        hi = hi[-1] * has_intra.to(x_intra.dtype)[:, None]
        logit = self.head(self.drop(torch.cat([hd[-1], hi], dim=1))).squeeze(1)
        zeros = torch.zeros_like(logit)
        return logit, zeros, zeros

    def penalty(self, gate: Tensor, concentration: Tensor, has_intra: Tensor) -> Tensor:
        return gate.sum() * 0.0
