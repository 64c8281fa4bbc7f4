"""TorchScript export of a trained forecaster and dynamic INT8 quantisation.

The exported module maps (x_daily, x_intra, m_intra, has_intra) to P(up) [B]; inputs are the
standardised windows of ``models.features``/``models.normalise`` (store the norm stats beside).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from models.features import Windows
from models.train import tensors


class ProbabilityHead(nn.Module):
    """Wraps a forecaster so that it returns P(up) only (the serving signature)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x_daily: Tensor, x_intra: Tensor, m_intra: Tensor, has_intra: Tensor
    ) -> Tensor:
        logit, _, _ = self.model(x_daily, x_intra, m_intra, has_intra)
        return torch.sigmoid(logit)


def export_torchscript(model: nn.Module, example: Windows, path: str | Path) -> Path:
    """Trace ``model`` (eval mode) on ``example`` windows, freeze and save it as TorchScript."""
    wrapped = ProbabilityHead(copy.deepcopy(model)).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about data-dependent shapes (nonzero)
        traced = torch.jit.trace(wrapped, tensors(example), check_trace=False)
        traced = torch.jit.freeze(traced)  # constants folded: about twice eager throughput
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(p))
    return p


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    return torch.jit.load(str(path), map_location="cpu")


def quantize_int8(model: nn.Module) -> nn.Module:
    """Dynamic INT8 quantisation of every Linear layer (weights int8, activations float)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notice
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8
        )
