"""Permutation importance on the inner validation slice: which inputs the forecaster uses.

For each feature, its values are shuffled across validation samples (a sample's whole token
history of that feature moves together) and the rise in log loss is recorded: about zero for a
feature the model ignores, positive for one it relies on.  Validation only: no test session.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from torch import nn

from models.features import INTRADAY_FEATURES, TOKEN_FEATURES, Windows
from models.metrics import log_loss
from models.train import predict


def permutation_importance(
    model: nn.Module, val: Windows, y: np.ndarray, *, repeats: int = 3, seed: int = 0
) -> dict[str, float]:
    """Mean rise in validation log loss per shuffled feature (``val`` already normalised)."""
    rng = np.random.default_rng(seed)
    base = log_loss(y, predict(model, val)[0])
    out: dict[str, float] = {}
    intra_rows = np.nonzero(val.has_intra)[0]

    def rise(make: object) -> float:
        assert callable(make)
        return float(
            np.mean([log_loss(y, predict(model, make())[0]) - base for _ in range(repeats)])
        )

    for j, f in enumerate(TOKEN_FEATURES):

        def shuffled_daily(j: int = j) -> Windows:
            x = val.x_daily.copy()
            x[:, :, j] = x[rng.permutation(len(val)), :, j]
            return replace(val, x_daily=x)

        out[f"daily:{f}"] = rise(shuffled_daily)
    if intra_rows.size > 1:
        for j, f in enumerate(INTRADAY_FEATURES):

            def shuffled_intra(j: int = j) -> Windows:
                x = val.x_intra.copy()
                perm = rng.permutation(intra_rows)
                x[intra_rows, :, j] = x[perm, :, j]
                m = np.where(val.m_intra[:, :, None], x, 0.0).astype(np.float32)
                return replace(val, x_intra=m)

            out[f"intraday:{f}"] = rise(shuffled_intra)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
