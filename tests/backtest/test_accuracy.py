"""Accuracy report on a hand-checked frame; statistics come from models.metrics."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from backtest.accuracy import accuracy_report, calibration, rolling_accuracy
from models.metrics import binomial_p_value, mcnemar_p_value, wilson_interval

SESSIONS = [
    date(2023, 12, 28),
    date(2023, 12, 29),
    date(2024, 1, 2),
    date(2024, 1, 3),
    date(2024, 1, 4),
]
LABELS = np.array([1, 0, 1, 1, 0])
P_UP = np.array([0.7, 0.6, 0.4, 0.8, 0.2])  # calls: up, up, down, up, down
PERSIST = np.array([0, 1, 0, 1, 1])  # persistence calls


@pytest.fixture
def report() -> dict:
    regime = np.array([1.0, 1.0, 0.0, np.nan, 0.0])
    return accuracy_report(SESSIONS, LABELS, P_UP, PERSIST, regime, window=2)


def test_model_accuracy_interval_and_p_value(report: dict) -> None:
    m = report["model"]
    assert (m["n"], m["accuracy"]) == (5, 3 / 5)  # right on sessions 0, 3, 4
    # Worked by hand (Wilson 1927, z = 1.959964): centre (0.6 + z^2/10) / (1 + z^2/5) = 0.55655,
    # half-width z sqrt(0.048 + z^2/100) / (1 + z^2/5) = 0.32583.
    assert (m["ci_low"], m["ci_high"]) == pytest.approx((0.23072, 0.88238), abs=1e-5)
    # Exact two-sided test of 3/5 against 1/2: every outcome is as likely or less, so p = 1.
    assert m["p_value"] == pytest.approx(1.0)


def test_confusion_matrix(report: dict) -> None:
    assert report["confusion"] == {"up_up": 2, "up_down": 1, "down_up": 1, "down_down": 1}


def test_per_year_direction_and_regime(report: dict) -> None:
    assert report["per_year"][2023]["n"] == 2 and report["per_year"][2023]["accuracy"] == 0.5
    assert report["per_year"][2024]["accuracy"] == pytest.approx(2 / 3)
    assert report["by_direction"]["up_sessions"]["accuracy"] == pytest.approx(2 / 3)
    assert report["by_direction"]["down_sessions"]["accuracy"] == 0.5
    assert report["by_regime"]["up_market_2d"]["n"] == 2  # NaN regime excluded
    assert report["by_regime"]["down_market_2d"]["accuracy"] == 0.5


def test_baselines_on_the_same_sessions_with_mcnemar(report: dict) -> None:
    up = report["baselines"]["always_up"]
    assert (up["n"], up["accuracy"]) == (5, 3 / 5)
    persist = report["baselines"]["persistence"]
    persist_correct = np.array([0, 0, 0, 1, 0], dtype=bool)
    assert persist["accuracy"] == 1 / 5
    model_correct = np.array([1, 0, 0, 1, 1], dtype=bool)
    # discordant pairs: model right only on sessions 0 and 4, persistence right only on none;
    # exact McNemar: 2 * P(X <= 0 | n=2, 1/2) = 2 * 1/4 = 0.5.
    assert persist["mcnemar_p_value_vs_model"] == pytest.approx(0.5)
    assert mcnemar_p_value(model_correct, persist_correct) == pytest.approx(0.5)


def test_metric_helpers_against_published_values() -> None:
    # Wilson 95% interval of 7/10: 0.3968-0.8922 (Newcombe 1998, Stat Med 17:857, method 3).
    assert wilson_interval(7, 10) == pytest.approx((0.3968, 0.8922), abs=5e-5)
    # Exact binomial, two-sided, 9 of 10 vs 1/2: 2 * (1 + 10) / 1024 = 0.021484375.
    assert binomial_p_value(9, 10) == pytest.approx(22 / 1024, rel=1e-9)


def test_rolling_accuracy_by_hand() -> None:
    out = rolling_accuracy(np.array([1, 0, 0, 1, 1], dtype=bool), 2)
    np.testing.assert_array_equal(out, [np.nan, 0.5, 0.0, 0.5, 1.0])


def test_calibration_bins() -> None:
    cal = calibration(np.array([1.0, 0.0, 1.0]), np.array([0.05, 0.08, 0.95]), bins=10)
    assert [(c["n"], c["observed_up"]) for c in cal] == [(2, 0.5), (1, 1.0)]
    assert cal[0]["mean_p_up"] == pytest.approx(0.065)
