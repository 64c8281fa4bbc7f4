"""Multi-scale attention forecaster of P(next session up).

Read top to bottom: the config, one attention block, a branch (embed -> attend -> pool), then the
model, which runs a short-term branch over intraday tokens and a long-term branch (half as many
heads) over daily tokens and blends them with a gate

    g = sigmoid(w . [short, long] + b)                      context: both branch summaries
    P(up) = g * sigmoid(head_s(short)) + (1 - g) * sigmoid(head_l(long))

Each branch's head turns its summary into that branch's forecast, and the gate blends the two
forecasts (a two-expert mixture).  Blending bounded probabilities rather than raw summaries keeps g
meaningful: a later layer cannot undo the gate by rescaling one branch (with a shared head after
the blend, g was unidentifiable and stayed near its initial value whatever the data said).

When a sample has no intraday bars its short branch is masked and g is set to 0 explicitly, so the
model trains and predicts over the whole daily history.  Against fitting short-term noise, the
loss adds (a) a concentration penalty on the short branch's attention (1 - entropy / log n) and
(b) a penalty on the mean gate, so intraday bars must earn their share of the blend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Mode = Literal["fused", "daily_only", "intraday_only"]


@dataclass(frozen=True)
class MultiScaleConfig:
    daily_features: int
    intraday_features: int
    daily_len: int  # L daily tokens
    intraday_len: int  # K * B intraday tokens
    d_model: int = 16
    short_heads: int = 4  # the long (daily) branch uses half as many
    dropout: float = 0.1
    attn_entropy_penalty: float = 0.05  # 0 disables the attention constraint
    gate_penalty: float = 0.01  # 0 disables the gate constraint
    mode: Mode = "fused"


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
    return nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))


class MultiScaleForecaster(nn.Module):
    def __init__(self, cfg: MultiScaleConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.short = Branch(
            cfg.intraday_features, cfg.intraday_len, d, cfg.short_heads, cfg.dropout
        )
        self.long = Branch(cfg.daily_features, cfg.daily_len, d, cfg.short_heads // 2, cfg.dropout)
        self.gate = nn.Linear(2 * d, 1)
        self.head_short = _head(d)
        self.head_long = _head(d)

    def forward(
        self, x_daily: Tensor, x_intra: Tensor, m_intra: Tensor, has_intra: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Logit of P(up) [B], gate g [B], attention concentration [B] (0 outside training)."""
        long, _ = self.long(x_daily, torch.ones_like(x_daily[..., 0], dtype=torch.bool))
        # The short branch runs only on samples that have intraday bars (most of the daily
        # history has none); the others get a zero summary: the masked branch adds nothing.
        idx = has_intra.nonzero().squeeze(1)
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
        p_short = torch.sigmoid(self.head_short(short).squeeze(1))
        p_long = torch.sigmoid(self.head_long(long).squeeze(1))
        p = g * p_short + (1.0 - g) * p_long
        # Returned as a logit so that one loss (BCE with logits) serves every model.
        return torch.logit(p.clamp(1e-6, 1.0 - 1e-6)), g, conc

    def penalty(self, gate: Tensor, concentration: Tensor, has_intra: Tensor) -> Tensor:
        """The constraint added to the loss, averaged over samples that have intraday bars."""
        w = has_intra.to(gate.dtype)
        n = w.sum().clamp(min=1.0)
        reg = self.cfg.attn_entropy_penalty * (concentration * w).sum() / n
        if self.cfg.mode == "fused":
            reg = reg + self.cfg.gate_penalty * (gate * w).sum() / n
        return reg


def predict_proba(
    model: nn.Module, x_daily: Tensor, x_intra: Tensor, m_intra: Tensor, has_intra: Tensor
) -> Tensor:
    """P(up) of a batch in eval mode without gradients."""
    model.eval()
    with torch.no_grad():
        logit, _, _ = model(x_daily, x_intra, m_intra, has_intra)
    return F.sigmoid(logit)
