"""The training loop (seed, budget, initial state) and the exported/quantised forecaster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.config import ForecastConfig
from models.export import export_torchscript, load_torchscript, quantize_int8
from models.factory import build, model_config
from models.features import Windows, build_windows
from models.normalise import apply_norm, fit_norm
from models.train import fit, predict, tensors
from tests.models.conftest import Market, label_array, small_config


@pytest.fixture(scope="module")
def data(market: Market) -> tuple[Windows, np.ndarray]:
    cfg = small_config()
    w = build_windows(market.daily, market.intraday, cfg.features)
    w = w.take(np.nonzero(np.isin(w.sessions, market.labels.get_column("session").to_numpy()))[0])
    return apply_norm(w, fit_norm(w)), label_array(market.labels, w.sessions)


@pytest.mark.parametrize("name", ["fused", "lstm"])
def test_same_seed_same_weights(
    data: tuple[Windows, np.ndarray], cfg: ForecastConfig, name: str
) -> None:
    w, y = data
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # different global state before: fit must reseed itself
        m = build(model_config(name, cfg.features, cfg.model))
        fit(m, w, y, cfg.train, max_epochs=1)
        runs.append(predict(m, w)[0])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_wall_clock_budget_stops_training(
    data: tuple[Windows, np.ndarray], cfg: ForecastConfig
) -> None:
    w, y = data
    m = build(model_config("fused", cfg.features, cfg.model))
    r = fit(m, w, y, cfg.train, budget_s=1e-3, max_epochs=50)
    assert r.stopped == "budget" and r.epochs == 1
    assert r.samples_seen < len(w)


def test_initial_state_is_the_starting_point(
    data: tuple[Windows, np.ndarray], cfg: ForecastConfig
) -> None:
    w, y = data
    champion = build(model_config("fused", cfg.features, cfg.model))
    fit(champion, w, y, cfg.train, max_epochs=2)
    state = {k: v.clone() for k, v in champion.state_dict().items()}
    challenger = build(model_config("fused", cfg.features, cfg.model))
    r = fit(challenger, w, y, cfg.train, init_state=state, budget_s=1e-3)
    # stopped inside the first epoch: the kept weights are the champion's or one step from them
    drift = max((challenger.state_dict()[k] - v).abs().max().item() for k, v in state.items())
    assert r.stopped == "budget" and drift < 0.05


def test_torchscript_export_matches_eager_on_1000_samples(
    data: tuple[Windows, np.ndarray], cfg: ForecastConfig, tmp_path: Path
) -> None:
    w, y = data
    m = build(model_config("fused", cfg.features, cfg.model))
    fit(m, w, y, cfg.train, max_epochs=1)
    idx = np.random.default_rng(0).integers(0, len(w), 1000)  # mixes with/without intraday
    sample = w.take(idx)
    assert sample.has_intra.any() and not sample.has_intra.all()
    path = export_torchscript(m, w.take(np.arange(7)), tmp_path / "fused.ts")
    scripted = load_torchscript(path)
    with torch.no_grad():
        p_ts = scripted(*tensors(sample)).double().numpy()
    p_eager, _ = predict(m, sample)
    assert np.max(np.abs(p_ts - p_eager)) <= 1e-5


def test_int8_quantised_model_still_gives_probabilities(
    data: tuple[Windows, np.ndarray], cfg: ForecastConfig
) -> None:
    w, y = data
    m = build(model_config("fused", cfg.features, cfg.model))
    fit(m, w, y, cfg.train, max_epochs=1)
    q = quantize_int8(m)
    p8, g8 = predict(q, w)
    p32, _ = predict(m, w)
    assert ((p8 >= 0) & (p8 <= 1)).all() and np.isfinite(p8).all()
    assert np.max(np.abs(p8 - p32)) < 0.1
    assert (g8[~w.has_intra] == 0).all()


def test_seeded_build_gives_the_same_initial_weights_whatever_the_rng_state(
    cfg: ForecastConfig,
) -> None:
    states = []
    for noise in (1, 2):
        torch.manual_seed(noise)
        m = build(model_config("fused", cfg.features, cfg.model), seed=7)
        states.append(m.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
