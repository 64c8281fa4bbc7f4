"""What the training loop and the model do not return, read through forward hooks.

``models.train.fit`` returns only the kept weights and the best validation loss, and
``MultiScaleForecaster`` returns the gate but not its attention weights.  These hooks observe
the public modules without changing a single computation of the model or of the loop.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.features import Windows
from models.train import predict, tensors


class LossCurve:
    """Per-epoch log loss on the fitting part and on the validation tail during ``fit``.

    ``fit`` scores its chronological validation tail once per epoch, in eval mode; the hook
    recognises that call (eval mode, validation batch size) and also scores the fitting part with
    the same weights.  Both losses are plain log loss (no penalty), without dropout.  Use as a
    context manager around one ``fit`` call.
    """

    def __init__(self, model: nn.Module, train: Windows, labels: np.ndarray, val_fraction: float):
        n_val = max(1, round(len(train) * val_fraction))  # the split models.train.fit makes
        n_fit = len(train) - n_val
        xs = tensors(train)
        y = torch.from_numpy(labels.astype(np.float32))
        self._fit_x = tuple(x[:n_fit] for x in xs)
        self._y_fit, self._y_val, self._n_val = y[:n_fit], y[n_fit:], n_val
        self._busy = False
        self.rows: list[tuple[int, float, float]] = []
        self._handle = model.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        if module.training or self._busy or args[0].shape[0] != self._n_val:
            return
        self._busy = True  # our own forward below must not be recorded
        try:
            with torch.no_grad():
                fit_logit = module(*self._fit_x)[0]
            fit_loss = float(F.binary_cross_entropy_with_logits(fit_logit, self._y_fit))
            val_loss = float(F.binary_cross_entropy_with_logits(output[0], self._y_val))
            self.rows.append((len(self.rows) + 1, fit_loss, val_loss))
        finally:
            self._busy = False

    def frame(self) -> pl.DataFrame:
        """epoch (1-based), train_loss, val_loss."""
        return pl.DataFrame(
            self.rows, schema=["epoch", "train_loss", "val_loss"], orient="row"
        ).cast({"epoch": pl.Int64, "train_loss": pl.Float64, "val_loss": pl.Float64})

    def __enter__(self) -> LossCurve:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._handle.remove()


def attention_weights(model: nn.Module, w: Windows) -> dict[str, np.ndarray]:
    """Attention weights [heads, query token, key token] of each branch for window 0 of ``w``.

    Keys ``daily`` (the long branch) and ``intraday`` (the short branch; absent when the window
    has no intraday bars, because the branch does not run).  ``w`` must be standardised.
    """
    branches = {"daily": getattr(model, "long", None), "intraday": getattr(model, "short", None)}
    if any(b is None for b in branches.values()):
        raise TypeError(f"{type(model).__name__} has no attention branches (long, short)")
    got: dict[str, np.ndarray] = {}

    def keep(name: str) -> Any:
        def hook(_m: nn.Module, _a: tuple[Any, ...], out: tuple[Tensor, Tensor]) -> None:
            if out[1].shape[0]:
                got[name] = out[1][0].detach().double().numpy()

        return hook

    handles = [b.attn.register_forward_hook(keep(k)) for k, b in branches.items()]  # type: ignore[union-attr]
    try:
        predict(model, w.take(np.array([0])))
    finally:
        for h in handles:
            h.remove()
    return got
