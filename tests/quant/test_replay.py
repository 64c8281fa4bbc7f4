"""Replay: the report's layout on a tiny synthetic run, and the comparison statistics by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feeds.store import open_store
from feeds.synthetic import SYNTHETIC_SYMBOL
from models.arms import score_arms
from quant import registry, replay
from quant.config import QuantConfig
from quant.replay import ARMS, ReplayError, ReplayOptions, run_replay


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


SPAN = (date(2022, 12, 19), date(2022, 12, 30))


def test_replay_writes_the_comparison(make_env: Callable[..., QuantConfig], tmp_path: Path) -> None:
    cfg = make_env()
    out = tmp_path / "replay"
    o = ReplayOptions(SYNTHETIC_SYMBOL, *SPAN, out, max_steps=5, budget_s=60.0, retrain_every=5)
    doc = run_replay(Path(cfg.store.path), cfg, o)
    on_disk = json.loads((out / "replay.json").read_text())
    assert set(on_disk["models"]) == set(ARMS)
    for arm in ARMS:
        m = on_disk["models"][arm]
        assert {"n", "accuracy", "ci_low", "ci_high", "p_value", "mcnemar_p", "log_loss"} <= set(m)
        assert set(m["mcnemar_p"]) == set(ARMS) - {arm}
        assert m["n"] == 9  # 10 sessions; the last one's label settles after the data ends
    pairs = on_disk["paired_bootstrap"]
    assert len(pairs) == len(ARMS) * (len(ARMS) - 1) // 2
    pb = pairs["continual vs frozen"]
    assert pb["accuracy_ci_low"] <= pb["accuracy_diff"] <= pb["accuracy_ci_high"]
    assert pb["log_loss_ci_low"] <= pb["log_loss_diff"] <= pb["log_loss_ci_high"]
    budget = on_disk["reproducible_budget"]
    assert (budget["max_steps"], budget["calibrate_steps"], budget["reproducible"]) == (
        5,
        False,
        True,
    )
    assert isinstance(on_disk["promotions"], int) and on_disk["gate_decisions"] == 10
    assert on_disk["days_run"] == 10 and on_disk["days_failed"] == 0
    assert on_disk["budget_overshoot_max_s"] is not None
    assert doc["sessions_per_minute"] > 0
    assert "| continual |" in (out / "replay.md").read_text()
    live = open_store(cfg.store.path, read_only=True)
    assert registry.list_versions(live) == []  # the live registry is never touched
    live.close()


def test_always_up_is_literally_up_and_majority_is_the_training_window_share(
    make_env: Callable[..., QuantConfig], tmp_path: Path
) -> None:
    cfg = make_env()
    o = ReplayOptions(
        SYNTHETIC_SYMBOL, *SPAN, tmp_path / "r", max_steps=3, budget_s=60.0, retrain_every=5
    )
    doc = run_replay(Path(cfg.store.path), cfg, o)
    pred = doc["predictions"]
    assert set(pred["always_up"]) == {1.0}
    ups = float(np.mean(pred["label"]))
    assert doc["models"]["always_up"]["accuracy"] == pytest.approx(ups)
    majority = set(pred["majority"])  # one up share per 5-session block, none of them 1
    assert 1 <= len(majority) <= 2 and all(0.3 < p < 0.7 for p in majority)


def test_replay_is_reproducible_and_resumes_after_an_interruption(
    make_env: Callable[..., QuantConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_env()
    arms = ("continual", "frozen", "persistence", "always_up")
    whole = ReplayOptions(
        SYNTHETIC_SYMBOL, *SPAN, tmp_path / "a", max_steps=4, budget_s=60.0, arms=arms
    )
    first = run_replay(Path(cfg.store.path), cfg, whole)["predictions"]

    real_run_daily = replay.run_daily
    calls = {"n": 0}

    def crash_on_the_fifth_day(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # the process stops mid-replay
        return real_run_daily(*args, **kwargs)

    cut = ReplayOptions(
        SYNTHETIC_SYMBOL, *SPAN, tmp_path / "b", max_steps=4, budget_s=60.0, arms=arms
    )
    monkeypatch.setattr(replay, "run_daily", crash_on_the_fifth_day)
    with pytest.raises(KeyboardInterrupt):
        run_replay(Path(cfg.store.path), cfg, cut)
    monkeypatch.setattr(replay, "run_daily", real_run_daily)
    again = run_replay(Path(cfg.store.path), cfg, cut)
    assert again["resumed"] is True and again["days_run"] == 10
    assert again["predictions"] == first  # bit-identical: fixed step budget, one thread
    other = ReplayOptions(
        SYNTHETIC_SYMBOL, *SPAN, tmp_path / "b", max_steps=9, budget_s=60.0, arms=arms
    )
    with pytest.raises(ReplayError, match="other settings"):
        run_replay(Path(cfg.store.path), cfg, other)
