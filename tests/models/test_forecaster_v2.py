"""The v2 forecaster's laws: the logistic inside it, reproducible ensembles, selection blind to
the test block, and the session summary features computed by hand."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import polars as pl
import pytest
import torch

from models.config import ForecastConfig
from models.ensemble import EnsembleForecaster, fit_temperature
from models.executor import LocalExecutor, ProcessExecutor, TaskError
from models.factory import build, model_config
from models.features import SESSION_FEATURES, TOKEN_FEATURES, build_windows, session_summaries
from models.logistic import fit_logistic
from models.multiscale import MultiScaleForecaster
from models.normalise import apply_norm, fit_norm
from models.selection import candidates
from models.train import predict
from models.walkforward import walk_forward
from tests.models.conftest import Market, label_array, small_config


def _cfg(**ev: object) -> ForecastConfig:
    cfg = small_config()
    over = {"seeds": 2, "candidates": 2, "retrain_every": 40, "warm_epochs": 1, **ev}
    return cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update=over)})


def _windows(market: Market, cfg: ForecastConfig):  # type: ignore[no-untyped-def]
    w = build_windows(market.daily, market.intraday, cfg.features)
    settled = market.labels.get_column("session").to_numpy().astype("datetime64[D]")
    return w.take(np.nonzero(np.isin(w.sessions.astype("datetime64[D]"), settled))[0])


def test_with_the_residual_at_zero_the_fused_model_is_the_logistic(market: Market) -> None:
    cfg = small_config()
    w = _windows(market, cfg)
    y = label_array(market.labels, w.sessions)
    norm = fit_norm(w)
    lm = fit_logistic(w, y, norm, lags=2, c=0.1)
    model = build(model_config("fused", cfg.features, cfg.model, linear_lags=2), seed=3)
    assert isinstance(model, MultiScaleForecaster)
    model.set_linear(*lm.linear)
    model.zero_residual()
    p, _ = predict(model, apply_norm(w, norm))
    np.testing.assert_allclose(p, lm.predict(w), atol=2e-6)
    # a residual that moved is no longer the logistic: the test can fail
    with torch.no_grad():
        model.head_long[3].bias.fill_(0.5)
    p2, _ = predict(model, apply_norm(w, norm))
    assert np.abs(p2 - lm.predict(w)).max() > 0.05


def test_temperature_changes_confidence_never_direction() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.3, 0.7, 400)
    y = (rng.uniform(size=400) < 0.5).astype(int)  # no skill: the best temperature shrinks
    t = fit_temperature(p, y)
    assert t > 1.0
    ens = EnsembleForecaster.of(
        [
            build(model_config("lstm", small_config().features, small_config().model), seed=s)
            for s in (1, 2)
        ]
    )
    ens.temperature.fill_(3.0)
    x = (
        torch.randn(8, 10, len(TOKEN_FEATURES)),
        torch.zeros(8, 48, 5),
        torch.zeros(8, 48, dtype=torch.bool),
        torch.zeros(8, dtype=torch.bool),
    )
    calibrated, _, _ = ens(*x)
    ens.temperature.fill_(1.0)
    raw, _, _ = ens(*x)
    assert torch.equal(calibrated > 0, raw > 0)
    assert (calibrated.abs() <= raw.abs() + 1e-6).all()


def test_ensembles_are_reproducible_and_executor_independent(market: Market) -> None:
    cfg = _cfg()
    w = build_windows(market.daily, market.intraday, cfg.features)
    run = lambda ex: walk_forward(  # noqa: E731
        w,
        market.labels,
        cfg,
        start=date(2022, 6, 1),
        models=("fused", "lstm"),
        max_epochs=2,
        executor=ex,
    )
    a, b = run(LocalExecutor()), run(LocalExecutor())
    assert a.predictions.equals(b.predictions) and a.seed_predictions.equals(b.seed_predictions)
    ex = ProcessExecutor(2)
    try:
        c = run(ex)
    finally:
        ex.close()
    assert a.predictions.equals(c.predictions)
    assert a.seed_predictions.get_column("seed").n_unique() == cfg.evaluation.seeds


def test_selection_never_reads_the_test_block(market: Market) -> None:
    """Plant a change in the test sessions (labels flipped, closes moved): no choice moves."""
    cfg = _cfg(retrain_every=500)  # one block: every session from `start` is a test session
    start = date(2022, 6, 1)
    models = ("fused", "lstm", "logistic")
    w = build_windows(market.daily, market.intraday, cfg.features)
    base = walk_forward(w, market.labels, cfg, start=start, models=models, max_epochs=2)
    lab = market.labels.with_columns(
        pl.when(pl.col("session") >= start).then(1 - pl.col("label")).otherwise(pl.col("label"))
    )
    planted_daily = market.daily.with_columns(
        pl.when(pl.col("session") > start).then(pl.col("close") * 1.01).otherwise(pl.col("close"))
    )
    w2 = build_windows(planted_daily, market.intraday, cfg.features)
    planted = walk_forward(w2, lab, cfg, start=start, models=models, max_epochs=2)
    assert base.selection == planted.selection
    # ... while the test forecasts did see the planted change (the plant is not a no-op)
    assert not base.predictions.equals(planted.predictions)


def test_candidates_start_with_the_configured_point_and_are_fixed() -> None:
    cfg = _cfg(candidates=4)
    a, b = candidates(cfg, "fused"), candidates(cfg, "fused")
    assert [c.params("fused") for c in a] == [c.params("fused") for c in b]
    assert a[0].model == cfg.model and len({tuple(c.params("fused").values()) for c in a}) == 4
    assert len(candidates(_cfg(select=False), "lstm")) == 1


def test_a_failing_fit_names_its_task() -> None:
    def boom(shared: object, task: int) -> int:
        raise RuntimeError("diverged")

    with pytest.raises(TaskError, match="task 3 failed: diverged"):
        LocalExecutor().map(boom, [3])


def test_session_summaries_by_hand() -> None:
    B = 48  # 5-minute bars; the last 6 slots are 14:30-15:00
    ret = np.zeros((2, B))
    ret[0, -6:] = 0.001
    ret[0, 0] = -0.002
    lv = np.zeros((2, B))
    lv[0, -6:] = math.log(3.0)  # the last half hour trades 3x a normal bar
    mask = np.ones((2, B), dtype=bool)
    mask[1, 10:] = False  # session 2 has 10 of 48 bars: too few, all zeros
    out = session_summaries(
        ret, lv, mask, np.array([101.0, np.nan]), np.array([100.0, 50.0]), np.array([0.01, 0.01])
    )
    col = {f: out[:, i] for i, f in enumerate(SESSION_FEATURES)}
    assert col["last30_ret"][0] == pytest.approx(0.006)
    rv = math.sqrt(6 * 0.001**2 + 0.002**2)
    assert col["intra_rv"][0] == pytest.approx(rv)
    assert col["rv_ratio"][0] == pytest.approx(rv / 0.01)
    assert col["last30_volume_share"][0] == pytest.approx(18 / (42 + 18))
    assert col["basis"][0] == pytest.approx(math.log(101 / 100))
    assert col["intraday_present"][0] == 1.0
    assert (out[1] == 0).all()


def test_absent_session_summaries_stay_zero_after_normalisation(market: Market) -> None:
    cfg = small_config()
    w = build_windows(market.daily, market.intraday, cfg.features)
    flag = TOKEN_FEATURES.index("intraday_present")
    assert w.x_daily[..., flag].any() and not w.x_daily[..., flag].all()
    n = apply_norm(w, fit_norm(w))
    absent = w.x_daily[..., flag] == 0
    sess = slice(len(TOKEN_FEATURES) - len(SESSION_FEATURES), len(TOKEN_FEATURES))
    assert (n.x_daily[..., sess][absent] == 0).all()
