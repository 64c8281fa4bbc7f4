"""The one training loop for every torch forecaster (attention model and LSTM).

Seeded; early stopping on the chronological validation tail of the training window; optional
wall-clock budget (the scheduler's daily fine-tune) and optional initial state (continual
fine-tuning from a champion).  Inputs are ``Windows`` already standardised by ``apply_norm``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from models.config import TrainSettings
from models.features import Windows

Stop = Literal["early_stop", "max_epochs", "max_steps", "budget"]


class ForecastNet(Protocol):
    """What the loop needs from a model: the shared forward and a loss penalty."""

    def __call__(
        self, x_daily: Tensor, x_intra: Tensor, m_intra: Tensor, has_intra: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]: ...

    def penalty(self, gate: Tensor, concentration: Tensor, has_intra: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class FitResult:
    model: nn.Module
    epochs: int  # epochs run
    best_epoch: int  # epoch whose weights were kept (1-based)
    best_val_loss: float  # validation log loss of the kept weights
    stopped: Stop
    seconds: float
    samples_seen: int
    steps: int = 0  # optimiser steps taken


def tensors(w: Windows) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Model inputs of ``w`` as tensors (x_daily, x_intra, m_intra, has_intra)."""
    return (
        torch.from_numpy(np.ascontiguousarray(w.x_daily, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(w.x_intra, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(w.m_intra)),
        torch.from_numpy(np.ascontiguousarray(w.has_intra)),
    )


def predict(model: nn.Module, w: Windows, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """P(up) and gate for every window, in eval mode without gradients."""
    model.eval()
    xs = tensors(w)
    p, g = [], []
    with torch.no_grad():
        for i in range(0, len(w), batch_size):
            logit, gate, _ = model(*(x[i : i + batch_size] for x in xs))
            p.append(torch.sigmoid(logit))
            g.append(gate)
    if not p:
        return np.zeros(0), np.zeros(0)
    return torch.cat(p).double().numpy(), torch.cat(g).double().numpy()


def _val_loss(model: nn.Module, xs: tuple[Tensor, ...], y: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        logit, _, _ = model(*xs)
        return float(F.binary_cross_entropy_with_logits(logit, y))


def fit(
    model: nn.Module,
    train: Windows,
    labels: np.ndarray,
    settings: TrainSettings,
    *,
    budget_s: float | None = None,
    init_state: Mapping[str, Tensor] | None = None,
    max_epochs: int | None = None,
    max_steps: int | None = None,
    regulariser: Callable[[], Tensor] | None = None,
    warm: bool = False,
    progress: bool = False,
) -> FitResult:
    """Train ``model`` in place on ``train``/``labels`` and keep the best validation weights.

    For a trained start (``init_state`` given, or ``warm``: the champion, the previous block),
    the starting weights are scored first and count as a candidate: training that never lowers
    the validation loss returns them unchanged.  A fresh random init is never kept.
    ``max_steps`` bounds the optimiser steps (a budget in work, reproducible);
    ``budget_s`` (default ``settings.budget_s``) is a wall-clock cap on top; ``init_state``
    loads a state dict first; ``max_epochs`` overrides the settings; ``regulariser()`` is added
    to every batch's loss (the fine-tune's anchor penalty).
    """
    if len(train) != labels.shape[0]:
        raise ValueError(f"{len(train)} windows but {labels.shape[0]} labels")
    n_val = max(1, round(len(train) * settings.val_fraction))
    if len(train) - n_val < 2:
        raise ValueError(f"training window too small: {len(train)} samples")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    if init_state is not None:
        model.load_state_dict(dict(init_state))
    net: ForecastNet = model  # type: ignore[assignment]
    xs = tensors(train)
    y = torch.from_numpy(labels.astype(np.float32))
    n_fit = len(train) - n_val
    val_xs = tuple(x[n_fit:] for x in xs)
    budget = budget_s if budget_s is not None else settings.budget_s
    epochs_max = max_epochs or settings.max_epochs
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

    start = time.perf_counter()
    # A warm start (a trained model: the champion, the previous block) is itself a candidate;
    # a fresh random init is not (keeping it would mean keeping noise).
    scored = warm or init_state is not None
    start_loss = _val_loss(model, val_xs, y[n_fit:]) if scored else math.inf
    best = (start_loss, 0, copy.deepcopy(model.state_dict()))
    stopped: Stop = "max_epochs"
    seen = epoch = steps = 0
    bar = tqdm(range(1, epochs_max + 1), disable=not progress, desc="fit", leave=False)
    for epoch in bar:
        model.train()
        order = torch.from_numpy(rng.permutation(n_fit))
        for i in range(0, n_fit, settings.batch_size):
            idx = order[i : i + settings.batch_size]
            batch = tuple(x[idx] for x in xs)
            logit, gate, conc = net(*batch)
            loss = F.binary_cross_entropy_with_logits(logit, y[idx])
            loss = loss + net.penalty(gate, conc, batch[3])
            if regulariser is not None:
                loss = loss + regulariser()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += idx.numel()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                stopped = "max_steps"
                break
            if budget is not None and time.perf_counter() - start > budget:
                stopped = "budget"
                break
        val = _val_loss(model, val_xs, y[n_fit:])
        bar.set_postfix(val_loss=f"{val:.4f}")
        if val < best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
        if stopped in ("budget", "max_steps"):
            break
        if epoch - best[1] >= settings.patience:
            stopped = "early_stop"
            break
    model.load_state_dict(best[2])
    model.eval()
    return FitResult(
        model=model,
        epochs=epoch,
        best_epoch=best[1],
        best_val_loss=best[0],
        stopped=stopped,
        seconds=time.perf_counter() - start,
        samples_seen=seen,
        steps=steps,
    )
