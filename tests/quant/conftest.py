"""Fixtures of the pipeline tests: a tiny synthetic store, a tiny model, budgets of a second."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from feeds.ingest import ingest_synthetic
from feeds.store import open_store
from feeds.synthetic import SYNTHETIC_SYMBOL
from models.config import FeatureSpec, ModelSettings
from models.factory import build, model_config
from models.features import INTRADAY_FEATURES, TOKEN_FEATURES
from models.forecaster import Forecaster
from models.multiscale import MultiScaleForecaster
from models.normalise import NormStats
from quant.config import QuantConfig

SYN_START, SYN_END = date(2021, 1, 4), date(2022, 12, 30)
LAST = date(2022, 12, 30)  # last synthetic session (a Friday)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(root: Path, **pipeline: Any) -> QuantConfig:
    """Small windows and model; fine-tune and first-fit budgets of about a second."""
    return QuantConfig.model_validate(tiny_config_dict(root, **pipeline))


def tiny_config_dict(root: Path, **pipeline: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "reports_dir": str(root / "reports"),
        "report_window": 60,
        "min_signal_record": 5,
        "headline_min_sessions": 20,
        "finetune": {"budget_s": 1.0, "recent_sessions": 120, "replay_sample": 60},
        "initial": {"holdout_sessions": 40},
        "gate": {"window_sessions": 10},
    }
    for k, v in pipeline.items():
        p[k] = {**p[k], **v} if isinstance(v, dict) else v
    return {
        "store": {"path": str(root / "q.duckdb")},
        "data": {
            "symbol": SYNTHETIC_SYMBOL,  # the synthetic market forecast under its own symbol
            "synthetic_start": SYN_START.isoformat(),
            "synthetic_end": SYN_END.isoformat(),
            "synthetic_minute_sessions": 0,
            "real_data_dir": str(root / "no-real-data"),
        },
        "forecast": {
            "features": {"daily_window": 10, "zscore_window": 10, "vol_window": 10},
            "model": {"d_model": 8, "short_heads": 2, "lstm_hidden": 8},
            "train": {"max_epochs": 4, "patience": 2},
            "evaluation": {"seeds": 2, "candidates": 1, "executor": "local"},
        },
        "pipeline": p,
    }


def to_toml(d: dict[str, Any], prefix: str = "") -> str:
    """TOML for nested dicts of scalars (enough for the test configurations)."""
    scalars = [f"{k} = {json.dumps(v)}" for k, v in d.items() if not isinstance(v, dict)]
    out = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for k, v in d.items():
        if isinstance(v, dict):
            out.append(to_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out)


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed store file holding the tiny synthetic market (copied by each test)."""
    root = tmp_path_factory.mktemp("template")
    cfg = tiny_config(root)
    d = cfg.data
    con = open_store(cfg.store.path)
    ingest_synthetic(
        con,
        start=SYN_START,
        end=SYN_END,
        seed=d.synthetic_seed,
        minute_sessions=d.synthetic_minute_sessions,
        symbol=d.synthetic_symbol,
    )
    con.close()
    return Path(cfg.store.path)


@pytest.fixture
def make_env(tmp_path: Path, template_store: Path) -> Callable[..., QuantConfig]:
    """``make_env(empty=False, **pipeline)``: a config whose store is a fresh copy."""

    def make(empty: bool = False, **pipeline: Any) -> QuantConfig:
        cfg = tiny_config(tmp_path, **pipeline)
        if not empty:
            shutil.copy(template_store, cfg.store.path)
        return cfg

    return make


def tiny_forecaster(seed: int = 0) -> Forecaster:
    """An untrained tiny forecaster with identity normalisation."""
    spec = FeatureSpec(daily_window=10, zscore_window=10, vol_window=10)
    torch.manual_seed(seed)
    model = build(model_config("fused", spec, ModelSettings(d_model=8, short_heads=2)))
    nd, ni = len(TOKEN_FEATURES), len(INTRADAY_FEATURES)
    # untrained but not flat: a random linear path and residual heads (they start at zero)
    rng = np.random.default_rng(seed)
    assert isinstance(model, MultiScaleForecaster)
    model.set_linear(0.2 * rng.standard_normal(2 * nd), 0.05)
    with torch.no_grad():
        for head in (model.head_short, model.head_long):
            head[3].weight.normal_(0.0, 0.3)
    norm = NormStats(
        np.zeros(nd, np.float32),
        np.ones(nd, np.float32),
        np.zeros(ni, np.float32),
        np.ones(ni, np.float32),
    )
    return Forecaster(model.eval(), spec, norm, "fused")
