"""Model names used across training, evaluation and checkpoints, and how to build each one."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from models.config import FeatureSpec, ModelSettings
from models.features import DAILY_FEATURES, INTRADAY_FEATURES, slots_per_session
from models.lstm import LSTMConfig, LSTMForecaster
from models.multiscale import MultiScaleConfig, MultiScaleForecaster

# Torch models of the walk-forward evaluation (the ablations of the attention model and the LSTM).
TORCH_MODELS = ("fused", "daily_only", "intraday_only", "fused_unconstrained", "lstm")
BASELINES = ("lstm", "logistic", "persistence", "always_up")
ALL_MODELS = ("fused", "daily_only", "intraday_only", "fused_unconstrained", *BASELINES)


def model_config(name: str, spec: FeatureSpec, s: ModelSettings) -> MultiScaleConfig | LSTMConfig:
    """The dataclass config of torch model ``name`` for inputs shaped by ``spec``."""
    if name == "lstm":
        return LSTMConfig(len(DAILY_FEATURES), len(INTRADAY_FEATURES), s.lstm_hidden, s.dropout)
    modes = {"fused": "fused", "fused_unconstrained": "fused"}
    modes |= {"daily_only": "daily_only", "intraday_only": "intraday_only"}
    if name not in modes:
        raise ValueError(f"unknown torch model {name!r}; expected one of {TORCH_MODELS}")
    constrained = name != "fused_unconstrained"
    return MultiScaleConfig(
        daily_features=len(DAILY_FEATURES),
        intraday_features=len(INTRADAY_FEATURES),
        daily_len=spec.daily_window,
        intraday_len=spec.intraday_sessions * slots_per_session(spec.intraday_minutes),
        d_model=s.d_model,
        short_heads=s.short_heads,
        dropout=s.dropout,
        attn_entropy_penalty=s.attn_entropy_penalty if constrained else 0.0,
        gate_penalty=s.gate_penalty if constrained else 0.0,
        mode=modes[name],  # type: ignore[arg-type]
    )


def build(cfg: MultiScaleConfig | LSTMConfig, *, seed: int | None = None) -> nn.Module:
    """A fresh model from its dataclass config; ``seed`` makes the initial weights reproducible
    (without touching the caller's global RNG state)."""
    with torch.random.fork_rng(enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        if isinstance(cfg, LSTMConfig):
            return LSTMForecaster(cfg)
        return MultiScaleForecaster(cfg)


def config_to_dict(cfg: MultiScaleConfig | LSTMConfig) -> dict[str, Any]:
    return {"class": type(cfg).__name__, **asdict(cfg)}


def config_from_dict(d: dict[str, Any]) -> MultiScaleConfig | LSTMConfig:
    d = dict(d)
    cls = {"MultiScaleConfig": MultiScaleConfig, "LSTMConfig": LSTMConfig}.get(d.pop("class", ""))
    if cls is None:
        raise ValueError(f"unknown model config class in {d}")
    return cls(**d)
