"""The fine-tune's pieces: the L2-SP anchor, the members it trains, the step budget."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from feeds.store import open_store
from models.ensemble import EnsembleForecaster
from quant.config import QuantConfig
from quant.finetune import anchor_penalty, finetune, members, train_scratch
from quant.market_data import MarketData
from tests.quant.conftest import LAST, tiny_forecaster


def test_anchor_is_zero_at_the_champion_and_grows_with_the_distance() -> None:
    net = tiny_forecaster().model
    assert anchor_penalty(net, 0.0) is None  # off: nothing is added to the loss
    pen = anchor_penalty(net, 0.5)
    assert pen is not None and float(pen().detach()) == 0.0
    p = next(net.parameters())
    with torch.no_grad():
        p.add_(0.1)
    assert float(pen().detach()) == pytest.approx(0.5 * 0.1**2 * p.numel(), rel=1e-5)
    pen().backward()
    assert p.grad is not None and torch.allclose(
        p.grad, torch.full_like(p, 0.5 * 2 * 0.1), atol=1e-6
    )


def test_a_single_model_is_its_own_only_member() -> None:
    net = tiny_forecaster().model
    assert members(net) == [net]


def test_finetune_trains_every_member_of_an_ensemble_and_leaves_the_champion(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path, read_only=True)
    data = MarketData.load(con, cfg, LAST, symbol=cfg.data.symbol, intraday_symbol=None)
    con.close()
    n = len(data.windows)
    champ = train_scratch(data, np.arange(n - 40), cfg.forecast, "fused").forecaster
    assert isinstance(champ.model, EnsembleForecaster) and len(members(champ.model)) == 2
    before = {k: v.clone() for k, v in champ.model.state_dict().items()}
    s = cfg.pipeline.finetune.model_copy(
        update={"max_steps": 3, "patience": 100, "calibrate_steps": False}
    )
    out = finetune(champ, data, np.arange(n - 200, n - 40), cfg.forecast, s, budget_s=600.0)
    assert (out.steps, out.max_steps) == (2 * 3, 3)  # 3 steps for each of the 2 members
    assert isinstance(out.forecaster.model, EnsembleForecaster)
    assert out.forecaster.model is not champ.model
    assert all(t.equal(before[k]) for k, t in champ.model.state_dict().items())  # untouched
    t_new = out.forecaster.model.state_dict()["temperature"]
    assert t_new.equal(before["temperature"])  # calibration kept
