"""Golden predictions: a tiny seeded fused forecaster and LSTM trained on the synthetic market
through the production path (``fit_forecaster``: inner selection, seed ensemble, linear path).

A refactor that changes the numbers (features, normalisation, selection, the training loop, the
models) is noticed here.  When a change is intended, regenerate with ``QUANT_UPDATE_GOLDEN=1 pytest
tests/models/test_golden.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from models.features import build_windows
from models.normalise import apply_norm
from models.train import predict
from models.walkforward import fit_forecaster
from tests.models.conftest import Market, label_array, small_config

GOLDEN = Path(__file__).parent / "golden"
N_TEST = 24  # the last sessions are held out and predicted


@pytest.mark.parametrize("name", ["fused", "lstm"])
def test_seeded_training_reproduces_the_golden_predictions(market: Market, name: str) -> None:
    cfg = small_config(seed=11)
    w = build_windows(market.daily, market.intraday, cfg.features)
    settled = market.labels.get_column("session").to_numpy().astype("datetime64[D]")
    w = w.take(np.nonzero(np.isin(w.sessions.astype("datetime64[D]"), settled))[0])
    y = label_array(market.labels, w.sessions)
    train, test = np.arange(len(w) - N_TEST), np.arange(len(w) - N_TEST, len(w))
    ev = cfg.evaluation.model_copy(update={"seeds": 2, "candidates": 2})
    cfg = cfg.model_copy(update={"evaluation": ev})
    fc, _ = fit_forecaster(w.take(train), y[train], cfg, name)  # norm: training window only
    p, _ = predict(fc.model, apply_norm(w.take(test), fc.norm))
    got = {
        "sessions": [str(s) for s in w.sessions[test].astype("datetime64[D]")],
        "p_up": [round(float(v), 6) for v in p],
    }
    path = GOLDEN / f"{name}.json"
    if os.environ.get("QUANT_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
    want = json.loads(path.read_text(encoding="utf-8"))
    assert got["sessions"] == want["sessions"]
    # 1e-4 absorbs float differences between CPU kernels after training; a real change of
    # features, seeds or the loop moves these probabilities by 1e-3 or more.
    np.testing.assert_allclose(got["p_up"], want["p_up"], atol=1e-4, rtol=0)
