"""Model names used across training, evaluation and checkpoints, and how to build each one."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from models.config import FeatureSpec, ModelSettings
from models.ensemble import EnsembleConfig, EnsembleForecaster, build_member
from models.features import DAILY_FEATURES, INTRADAY_FEATURES, TOKEN_FEATURES, slots_per_session
from models.lstm import LSTMConfig
from models.multiscale import MultiScaleConfig

# Torch models of the walk-forward: the forecaster, its ablations, and the LSTM baseline.
ABLATIONS = ("daily_only", "intraday_only", "fused_unconstrained", "no_linear")
TORCH_MODELS = ("fused", *ABLATIONS, "lstm")
BASELINES = ("lstm", "logistic", "persistence", "always_up", "majority")
ALL_MODELS = ("fused", *ABLATIONS, *BASELINES)

ModelConfig = MultiScaleConfig | LSTMConfig | EnsembleConfig


def model_config(
    name: str, spec: FeatureSpec, s: ModelSettings, *, linear_lags: int = 2
) -> MultiScaleConfig | LSTMConfig:
    """The dataclass config of torch model ``name`` for inputs shaped by ``spec``."""
    if name == "lstm":
        return LSTMConfig(
            len(TOKEN_FEATURES), len(INTRADAY_FEATURES), s.lstm_hidden, s.dropout, s.attend_len
        )
    modes = {"fused": "fused", "fused_unconstrained": "fused", "no_linear": "fused"}
    modes |= {"daily_only": "daily_only", "intraday_only": "intraday_only"}
    if name not in modes:
        raise ValueError(f"unknown torch model {name!r}; expected one of {TORCH_MODELS}")
    constrained = name != "fused_unconstrained"
    return MultiScaleConfig(
        daily_features=len(TOKEN_FEATURES),
        intraday_features=len(INTRADAY_FEATURES),
        daily_len=spec.daily_window,
        intraday_len=spec.intraday_sessions * slots_per_session(spec.intraday_minutes),
        d_model=s.d_model,
        short_heads=s.short_heads,
        dropout=s.dropout,
        attn_entropy_penalty=s.attn_entropy_penalty if constrained else 0.0,
        gate_penalty=s.gate_penalty if constrained else 0.0,
        mode=modes[name],  # type: ignore[arg-type]
        linear_lags=linear_lags,
        linear=name != "no_linear",
        residual_penalty=s.residual_penalty,
        attend_len=s.attend_len,
        branch_features=len(DAILY_FEATURES),
    )


def build(cfg: ModelConfig, *, seed: int | None = None) -> nn.Module:
    """A fresh model from its dataclass config; ``seed`` makes the initial weights reproducible
    (without touching the caller's global RNG state)."""
    with torch.random.fork_rng(enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        if isinstance(cfg, EnsembleConfig):
            return EnsembleForecaster(cfg)
        return build_member(cfg)


def config_to_dict(cfg: ModelConfig) -> dict[str, Any]:
    if isinstance(cfg, EnsembleConfig):
        return {"class": "EnsembleConfig", "k": cfg.k, "member": config_to_dict(cfg.member)}
    return {"class": type(cfg).__name__, **asdict(cfg)}


def config_from_dict(d: dict[str, Any]) -> ModelConfig:
    d = dict(d)
    kind = d.pop("class", "")
    if kind == "EnsembleConfig":
        member = config_from_dict(d["member"])
        if isinstance(member, EnsembleConfig):
            raise ValueError("an ensemble cannot hold ensembles")
        return EnsembleConfig(member, int(d["k"]))
    cls = {"MultiScaleConfig": MultiScaleConfig, "LSTMConfig": LSTMConfig}.get(kind)
    if cls is None:
        raise ValueError(f"unknown model config class in {d}")
    return cls(**d)
