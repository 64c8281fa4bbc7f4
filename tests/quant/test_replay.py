"""Replay: the report's layout on a tiny synthetic run, and the comparison statistics by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from feeds.store import open_store
from feeds.synthetic import SYNTHETIC_SYMBOL
from quant import registry
from quant.config import QuantConfig
from quant.replay import ARMS, ReplayOptions, run_replay, score_arms


def test_score_arms_by_hand() -> None:
    labels = np.array([1, 0, 1, 1, 0, 1, 0, 1])
    preds = {
        "a": np.array([0.9, 0.1, 0.8, 0.7, 0.2, 0.6, 0.4, 0.3]),  # 7 of 8 right
        "b": np.ones(8),  # 5 of 8 right
    }
    s = score_arms(labels, preds)
    assert (s["a"]["n"], s["a"]["accuracy"], s["b"]["accuracy"]) == (8, 7 / 8, 5 / 8)
    # a right / b wrong on sessions 2, 5 and 7; b right / a wrong on session 8: exact McNemar
    # p = P(X <= 1 or X >= 3 | n = 4) with X ~ Bin(4, 1/2) = 10/16.
    assert s["a"]["mcnemar_p"]["b"] == pytest.approx(10 / 16)
    assert s["b"]["mcnemar_p"]["a"] == pytest.approx(10 / 16)
    assert s["a"]["ci_low"] < 7 / 8 < s["a"]["ci_high"]
    assert s["a"]["p_value"] == pytest.approx(18 / 256)  # two-sided exact binomial, 7 of 8


def test_replay_writes_the_comparison(make_env: Callable[..., QuantConfig], tmp_path: Path) -> None:
    cfg = make_env()
    out = tmp_path / "replay"
    o = ReplayOptions(SYNTHETIC_SYMBOL, date(2022, 12, 19), date(2022, 12, 30), 0.3, out, 1.0, 5)
    doc = run_replay(Path(cfg.store.path), cfg, o)
    on_disk = json.loads((out / "replay.json").read_text())
    assert set(on_disk["models"]) == set(ARMS)
    for arm in ARMS:
        m = on_disk["models"][arm]
        assert {"n", "accuracy", "ci_low", "ci_high", "p_value", "mcnemar_p"} <= set(m)
        assert set(m["mcnemar_p"]) == set(ARMS) - {arm}
        assert m["n"] == 9  # 10 sessions; the last one's label settles after the data ends
    assert on_disk["days_run"] == 10 and on_disk["days_failed"] == 0
    assert on_disk["budget_overshoot_max_s"] is not None
    assert doc["sessions_per_minute"] > 0
    assert "| continual |" in (out / "replay.md").read_text()
    live = open_store(cfg.store.path, read_only=True)
    assert registry.list_versions(live) == []  # the live registry is never touched
    live.close()
