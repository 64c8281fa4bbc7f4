"""Multi-scale attention forecaster of P(next session up): a logistic regression plus a gated,
regularised attention residual.

Read top to bottom: the config, one attention block, a branch (embed -> attend -> pool), then the
model.  Its logit is

    logit = linear(last ``linear_lags`` daily tokens)                     the linear path
          + g * r_short(intraday tokens) + (1 - g) * r_long(daily tokens)  the residual
    g     = sigmoid(w . [short, long] + b)                                 the gate

The linear path is the logistic-regression baseline itself: it reads the same standardised
decision-session features, is set from the fitted logistic (``set_linear``) and stays frozen, so
with the residual at zero (``zero_residual``) the model IS the logistic regression (a test checks
the probabilities).  The residual is what the attention branches add on top; its size is
penalised (``residual_penalty * mean(residual^2)``) and each fit keeps it only when it lowers the
validation loss below the linear path's own (``models.selection.run_fit``).  This is
the lesson of LSTNet's linear "highway" and of the DLinear study: on a noisy series the linear
model is hard to beat, so the network must be built to start from it, not to compete with it.

Two experts, one gate: the short-term branch runs over intraday tokens, the long-term branch
(half as many heads) over the daily-bar features of the daily tokens, each with its own head; the
gate blends their residual logits.  The session summaries of intraday bars (last-30-minute
return, volume share, basis, ...) reach the linear path, not the daily branch, so what minute
bars tell the residual goes through the gate and the gate measures how much minutes are used.

When a sample has no intraday bars its short branch is masked and g is set to 0 explicitly.
Against fitting short-term noise, the loss adds (a) a concentration penalty on the short branch's
attention (1 - entropy / log n) and (b) a penalty on the mean gate; both weights
are hyperparameters chosen on inner validation (``models.selection``), and either can be 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

Mode = Literal["fused", "daily_only", "intraday_only"]
RESIDUAL_BOUND = 1.0  # largest logit either expert may add to the linear path


@dataclass(frozen=True)
class MultiScaleConfig:
    daily_features: int
    intraday_features: int
    daily_len: int  # L daily tokens in the inputs
    intraday_len: int  # K * B intraday tokens
    d_model: int = 16
    short_heads: int = 4  # the long (daily) branch uses half as many
    dropout: float = 0.1
    attn_entropy_penalty: float = 0.05  # 0 disables the attention constraint
    gate_penalty: float = 0.01  # 0 disables the gate constraint
    mode: Mode = "fused"
    linear_lags: int = 2  # daily tokens read by the linear path (the logistic's lags)
    linear: bool = True  # False: the attention residual alone (the ablation "no_linear")
    residual_penalty: float = 0.01  # weight of mean(residual logit^2)
    attend_len: int = 0  # daily tokens the long branch attends over (0: all daily_len)
    branch_features: int = 0  # leading daily-token features the long branch reads (0: all)


class SelfAttention(nn.Module):
    """Multi-head self-attention that also returns its weights (the constraint needs them)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        assert d % heads == 0, "d_model must divide by the number of heads"
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        # Masked keys get -inf; a row with no key at all (no intraday bars) gets a flat row
        # instead of NaN, and the branch output is zeroed by the caller.
        key_ok = mask[:, None, None, :] | ~mask.any(dim=1)[:, None, None, None]
        if not self.training and not self._forward_hooks:
            # Serving: the fused kernel, 2-3x the batch throughput on CPU.  The weights are
            # materialised only for the loss (training) or for an observer (a forward hook).
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_ok)
            return self.proj(y.transpose(1, 2).reshape(B, T, D)), y.new_zeros(0)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D // self.heads)  # [B, H, T, T]
        att = att.masked_fill(~key_ok, float("-inf")).softmax(dim=-1)
        # No dropout on the weights themselves: it cost a fifth of a training step on CPU.
        y = (att @ v).transpose(1, 2).reshape(B, T, D)
        return self.proj(y), att  # the weights: for the loss and for inspection (research hooks)


class Branch(nn.Module):
    """Tokens -> embedding + learned position -> pre-LN attention block -> summary vector.

    The summary is the masked mean of the tokens plus the last token (the decision session for
    daily tokens, the closing bar for intraday ones), which has attended to all the others.
    """

    def __init__(self, n_features: int, n_tokens: int, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, d)
        self.pos = nn.Parameter(0.02 * torch.randn(1, n_tokens, d))
        self.ln1 = nn.LayerNorm(d)
        self.attn = SelfAttention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h = self.embed(x * mask[..., None].to(x.dtype)) + self.pos  # absent bars read as 0
        a, att = self.attn(self.ln1(h), mask)
        h = h + self.drop(a)
        h = h + self.drop(self.mlp(self.ln2(h)))
        w = mask.to(h.dtype)[:, :, None]
        pooled = (h * w).sum(1) / w.sum(1).clamp(min=1.0)
        return pooled + h[:, -1], att


def attention_concentration(att: Tensor, mask: Tensor) -> Tensor:
    """Per sample: 1 - mean normalised entropy of the attention rows of present tokens.

    0 when every query spreads its attention evenly, 1 when each looks at a single bar.
    """
    n = mask.sum(1).to(att.dtype)  # present tokens per sample
    ent = -(att * att.clamp(min=1e-12).log()).sum(-1)  # [B, H, T]
    q = mask.to(att.dtype)[:, None, :]
    mean_ent = (ent * q).sum((1, 2)) / (q.sum((1, 2)) * att.shape[1]).clamp(min=1.0)
    return torch.where(n > 1, 1.0 - mean_ent / n.clamp(min=2.0).log(), torch.zeros_like(n))


def _head(d: int) -> nn.Sequential:
    # Ordinary random init: heads that start at exactly zero never got their residual past
    # early stopping (the planted-signal test learned nothing); ``zero_residual`` is the switch.
    return nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))


class MultiScaleForecaster(nn.Module):
    def __init__(self, cfg: MultiScaleConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        attend = cfg.attend_len or cfg.daily_len
        self.short = Branch(
            cfg.intraday_features, cfg.intraday_len, d, cfg.short_heads, cfg.dropout
        )
        n_long = cfg.branch_features or cfg.daily_features
        self.long = Branch(n_long, attend, d, cfg.short_heads // 2, cfg.dropout)
        self.gate = nn.Linear(2 * d, 1)
        self.head_short = _head(d)
        self.head_long = _head(d)
        # The linear path: frozen weights of the fitted logistic (zero until set_linear).
        self.linear = nn.Linear(cfg.linear_lags * cfg.daily_features, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.linear.requires_grad_(False)
        self._residual = torch.zeros(0)

    def set_linear(self, coef: np.ndarray, intercept: float) -> None:
        """Load the logistic regression's coefficients (design: last lags tokens, flattened)."""
        w = torch.as_tensor(np.asarray(coef, dtype=np.float32).reshape(1, -1))
        if w.shape != self.linear.weight.shape:
            raise ValueError(
                f"linear path expects {tuple(self.linear.weight.shape)}, got {w.shape}"
            )
        with torch.no_grad():
            self.linear.weight.copy_(w)
            self.linear.bias.fill_(float(intercept))

    def zero_residual(self) -> None:
        """Switch the residual off: the model becomes its linear path (the logistic)."""
        with torch.no_grad():
            for head in (self.head_short, self.head_long):
                out = head[3]
                assert isinstance(out, nn.Linear)
                out.weight.zero_()
                out.bias.zero_()

    def forward(
        self, x_daily: Tensor, x_intra: Tensor, m_intra: Tensor, has_intra: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Logit of P(up) [B], gate g [B], attention concentration [B] (0 outside training)."""
        attend = self.cfg.attend_len or self.cfg.daily_len
        xd = x_daily[:, -attend:, : self.cfg.branch_features or self.cfg.daily_features]
        long, _ = self.long(xd, torch.ones_like(xd[..., 0], dtype=torch.bool))
        # The short branch runs only on samples that have intraday bars (most of the daily
        # history has none); the others get a zero summary: the masked branch adds nothing.
        idx = has_intra.nonzero().squeeze(1)
        if self.cfg.mode == "daily_only":  # the gate is 0: the short branch would be unused work
            idx = idx[:0]
        short_sub, att = self.short(x_intra.index_select(0, idx), m_intra.index_select(0, idx))
        short = torch.zeros_like(long).index_copy(0, idx, short_sub)
        conc = torch.zeros_like(long[:, 0])  # only computed in training, where the loss needs it
        if self.training:
            conc = conc.index_copy(
                0, idx, attention_concentration(att, m_intra.index_select(0, idx))
            )
        avail = has_intra.to(long.dtype)
        g = torch.sigmoid(self.gate(torch.cat([short, long], dim=1))).squeeze(1)
        if self.cfg.mode == "daily_only":
            g = torch.zeros_like(g)
        elif self.cfg.mode == "intraday_only":
            g = torch.ones_like(g)
        g = g * avail  # explicit fall-back to the daily branch without intraday bars
        # Each expert's residual is bounded (|r| < RESIDUAL_BOUND): an unbounded logit could grow
        # instead of the gate, leaving g unidentified (the planted-signal test saw g anywhere in
        # 0.5-1 for an intraday-only signal); bounded, a strong minute signal needs g -> 1.
        bound = RESIDUAL_BOUND
        r_short = bound * torch.tanh(self.head_short(short).squeeze(1) / bound)
        r_long = bound * torch.tanh(self.head_long(long).squeeze(1) / bound)
        residual = g * r_short + (1.0 - g) * r_long
        logit = residual
        if self.cfg.linear:
            lags = x_daily[:, -self.cfg.linear_lags :].reshape(x_daily.shape[0], -1)
            logit = logit + self.linear(lags).squeeze(1)
        if self.training:  # kept for ``penalty`` (the loss of this very batch), which clears it
            self._residual = residual
        return logit, g, conc

    def penalty(self, gate: Tensor, concentration: Tensor, has_intra: Tensor) -> Tensor:
        """The constraints added to the loss: residual size over every sample; attention
        concentration and the mean gate over samples that have intraday bars."""
        w = has_intra.to(gate.dtype)
        n = w.sum().clamp(min=1.0)
        residual, self._residual = self._residual, torch.zeros(0)
        reg = (
            self.cfg.residual_penalty * (residual**2).mean() if residual.numel() else 0.0 * w.sum()
        )
        reg = reg + self.cfg.attn_entropy_penalty * (concentration * w).sum() / n
        if self.cfg.mode == "fused":
            reg = reg + self.cfg.gate_penalty * (gate * w).sum() / n
        return reg
