"""Checkpoint round trip, clear errors on mismatch or corruption, the forecaster's guards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from models import checkpoint
from models.checkpoint import CheckpointError, CheckpointMismatchError
from models.config import FeatureSpec
from models.factory import build, model_config
from models.features import FeatureError, build_windows
from models.forecaster import Forecaster
from models.normalise import apply_norm, fit_norm
from models.train import fit
from tests.models.conftest import Market, label_array


@pytest.fixture(scope="module")
def trained(market: Market) -> Forecaster:
    from tests.models.conftest import small_config

    cfg = small_config()
    w = build_windows(market.daily, market.intraday, cfg.features)
    w = w.take(np.nonzero(np.isin(w.sessions, market.labels.get_column("session").to_numpy()))[0])
    norm = fit_norm(w)
    model = build(model_config("fused", cfg.features, cfg.model))
    torch.set_num_threads(1)
    fit(model, apply_norm(w, norm), label_array(market.labels, w.sessions), cfg.train)
    return Forecaster(model, cfg.features, norm, "fused", {"trained_through": "test"})


@pytest.fixture
def saved(trained: Forecaster, tmp_path: Path) -> Path:
    return checkpoint.save(tmp_path / "fused.pt", trained.checkpoint())


def test_round_trip_gives_identical_forecasts(
    trained: Forecaster, saved: Path, market: Market
) -> None:
    loaded = Forecaster.from_checkpoint(saved, expect_spec=trained.spec)
    a = trained.predict(market.daily, market.intraday)
    b = loaded.predict(market.daily, market.intraday)
    assert a == b
    assert a.used_intraday and 0.0 < a.p_up < 1.0
    assert a.session == market.daily.get_column("session").max()
    assert loaded.meta["trained_through"] == "test"


def test_checkpoint_for_another_config_is_refused_with_the_difference(saved: Path) -> None:
    other = FeatureSpec(daily_window=20, zscore_window=10, vol_window=10)
    with pytest.raises(CheckpointMismatchError, match="daily_window: checkpoint 10 != expected 20"):
        checkpoint.load(saved, expect_spec=other)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupted_checkpoint_raises(saved: Path, damage: str) -> None:
    raw = bytearray(saved.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":  # one weight byte changed: the zip still opens, the digest catches it
        ck = torch.load(saved, weights_only=True)
        k = next(iter(ck["state_dict"]))
        ck["state_dict"][k].view(-1)[0] += 1.0
        torch.save(ck, saved)
        raw = bytearray(saved.read_bytes())
    else:
        raw = bytearray(b"not a checkpoint at all")
    saved.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError):
        checkpoint.load(saved)


def test_forecast_ignores_bars_after_the_decision_session(
    trained: Forecaster, market: Market
) -> None:
    t = market.daily.get_column("session").to_list()[-5]
    cut_daily = market.daily.filter(pl.col("session") <= t)
    cut_intra = market.intraday.filter(pl.col("session") <= t)
    a = trained.predict(market.daily, market.intraday, session=t)
    b = trained.predict(cut_daily, cut_intra, session=t)
    assert a == b


def test_daily_only_sessions_fall_back_to_the_daily_branch(
    trained: Forecaster, market: Market
) -> None:
    f = trained.predict(market.daily, None)
    assert not f.used_intraday and f.gate == 0.0


def test_bad_inputs_raise_instead_of_forecasting(trained: Forecaster, market: Market) -> None:
    d = market.daily
    with pytest.raises(FeatureError, match="too little history"):
        trained.predict(d.head(12))
    with pytest.raises(FeatureError, match="missing"):
        trained.predict(d.filter(pl.int_range(pl.len()) != d.height - 3))
    nan = d.with_columns(
        pl.when(pl.int_range(pl.len()) == d.height - 2)
        .then(float("nan"))
        .otherwise(pl.col("volume"))
        .alias("volume")
    )
    with pytest.raises(FeatureError, match="NaN"):
        trained.predict(nan)
    naive = market.intraday.with_columns(pl.col("ts").dt.replace_time_zone(None))
    with pytest.raises(FeatureError, match="timezone-aware"):
        trained.predict(d, naive)
    nan_i = market.intraday.with_columns(pl.lit(float("nan")).alias("close"))
    with pytest.raises(FeatureError, match="NaN"):
        trained.predict(d, nan_i)


def test_forecaster_input_is_utc_aware(market: Market) -> None:
    ts = market.intraday.schema["ts"]
    assert isinstance(ts, pl.Datetime) and ts.time_zone == "UTC"
    assert market.intraday.get_column("ts").min().tzinfo is not None  # type: ignore[union-attr]
