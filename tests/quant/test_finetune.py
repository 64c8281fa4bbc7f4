"""The fine-tune's pieces: the L2-SP anchor, the members it trains, the step budget."""

from __future__ import annotations

import pytest
import torch

from quant.finetune import anchor_penalty, members
from tests.quant.conftest import tiny_forecaster


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
