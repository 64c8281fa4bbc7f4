"""The one-home rules of models/: label alignment, the direction rule, the training-size rule and
arm scoring (with arms that forecast different sessions)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from models.arms import arm_arrays, arms_table, score_arms
from models.features import Windows
from models.labels import labelled
from models.metrics import calls_up, confidence, direction, hits, mcnemar_p_value
from models.sizes import MIN_TRAIN, daily_bars_needed, enough_to_train, gate_pool_too_small


def _windows(sessions: list[date]) -> Windows:
    n = len(sessions)
    x = np.arange(n, dtype=np.float32).reshape(n, 1, 1)
    return Windows(
        np.array(sessions, dtype="datetime64[D]"),
        x,
        np.zeros((n, 1, 1), np.float32),
        np.zeros((n, 1), bool),
        np.zeros(n, bool),
    )


def test_labelled_keeps_only_settled_sessions_in_window_order() -> None:
    days = [date(2024, 1, 2) + timedelta(i) for i in range(5)]
    w = _windows(days)
    labels = pl.DataFrame(
        {
            "session": [days[3], days[0], days[1]],  # out of order; days[2] and days[4] lack one
            "label": [0, 1, 0],
            "label_session": [days[4], days[1], days[2]],
        }
    ).with_columns(pl.col("label").cast(pl.Int8))
    got = labelled(w, labels)
    assert got.windows.sessions.tolist() == [days[0], days[1], days[3]]
    assert got.windows.x_daily[:, 0, 0].tolist() == [0.0, 1.0, 3.0]  # rows move with sessions
    assert got.labels.dtype == np.int64 and got.labels.tolist() == [1, 0, 0]
    assert got.settled.tolist() == [days[1], days[2], days[4]]


def test_the_direction_rule_calls_a_flat_half_down() -> None:
    assert calls_up([0.49, 0.5, 0.51]).tolist() == [False, False, True]
    assert (direction(0.5), direction(0.5000001)) == ("down", "up")
    assert hits([1, 0, 1], [0.7, 0.5, 0.5]).tolist() == [True, True, False]
    assert confidence(0.75) == pytest.approx(0.5) and confidence(0.5) == 0.0


def test_the_training_size_rules_keep_their_old_numbers() -> None:
    assert MIN_TRAIN == 100 and enough_to_train(100) and not enough_to_train(99)
    assert daily_bars_needed(20, 40) == 20 + 40 + 110  # was `need + 110` in quant main
    assert gate_pool_too_small(30, 20) and not gate_pool_too_small(31, 20)  # was `window + 10`


def test_score_arms_scores_each_arm_on_its_sessions_and_pairs_on_common_ones() -> None:
    y = np.array([1, 0, 1, 1, 0, 1])
    a = np.array([0.9, 0.2, 0.8, 0.4, 0.1, 0.7])  # 5 of 6 right
    b = np.array([np.nan, np.nan, 0.2, 0.9, 0.9, 0.9])  # forecasts the last 4: 2 of 4 right
    s = score_arms(y, {"a": a, "b": b})
    assert (s["a"]["n"], s["a"]["accuracy"]) == (6, 5 / 6)
    assert (s["b"]["n"], s["b"]["accuracy"]) == (4, 2 / 4)
    common = slice(2, None)
    want = mcnemar_p_value(hits(y[common], a[common]), hits(y[common], b[common]))
    assert s["a"]["mcnemar_p"] == {"b": want} and s["b"]["mcnemar_p"] == {"a": want}
    only = score_arms(y, {"a": a, "b": b}, against=["b"])
    assert only["a"]["mcnemar_p"] == {"b": want} and only["b"]["mcnemar_p"] == {}


def test_arm_arrays_and_the_table() -> None:
    d = [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
    pred = pl.DataFrame(
        {
            "session": [d[0], d[1], d[2], d[1]],
            "model": ["a", "a", "a", "b"],
            "p_up": [0.6, 0.4, 0.7, 0.9],
            "label": [1, 0, 1, 0],
        }
    )
    y, preds = arm_arrays(pred, ("b", "a", "c"))
    assert y.tolist() == [1, 0, 1] and list(preds) == ["b", "a"]  # "c" made no forecast
    assert np.isnan(preds["b"][[0, 2]]).all() and preds["b"][1] == 0.9
    text = arms_table(score_arms(y, preds), extra={"note": lambda r: f"n={r['n']}"})
    head, rule, *rows = text.splitlines()
    assert "McNemar p vs b" in head and "McNemar p vs a" in head and head.endswith("note |")
    assert rule.count("---") == head.count("|") - 1
    assert rows[0].startswith("| b | 1 | 0.00 |") and rows[0].endswith("n=1 |")
    assert rows[1].startswith("| a | 3 | 100.00 |")
