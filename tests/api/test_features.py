"""The serving features (numpy, one window) equal ``models.features`` (polars, the definition)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.calendar import trading_days
from feeds.resample import resample_intraday
from feeds.synthetic import synthetic_market
from models.config import FeatureSpec
from models.features_fast import (
    DailyArrays,
    MinuteArrays,
    agrees_with_reference,
    reference_sample,
    sample,
)

SPECS = [
    FeatureSpec(),
    FeatureSpec(daily_window=10, zscore_window=10, vol_window=10),
    FeatureSpec(daily_window=5, zscore_window=7, vol_window=3, intraday_sessions=3),
    FeatureSpec(intraday_minutes=1, intraday_sessions=2),
]


def test_canary_agrees_for_every_spec() -> None:
    assert all(agrees_with_reference(s) for s in SPECS)


def _arrays(
    daily: pl.DataFrame, minute: pl.DataFrame | None
) -> tuple[DailyArrays, MinuteArrays | None]:
    c = {k: daily[k].to_numpy().astype(np.float64) for k in ("open", "high", "low", "close")}
    d = DailyArrays(
        sessions=daily["session"].to_list(),
        volume=daily["volume"].to_numpy().astype(np.float64),
        amount=daily["amount"].to_numpy().astype(np.float64),
        amount_estimated=False,
        **c,
    )
    if minute is None or minute.is_empty():
        return d, None
    m = MinuteArrays(
        minute["ts"].dt.epoch("s").to_numpy().astype(np.int64),
        *(
            minute[k].to_numpy().astype(np.float64)
            for k in ("open", "high", "low", "close", "volume")
        ),
    )
    return d, m


@given(
    seed=st.integers(0, 10_000),
    spec_i=st.integers(0, len(SPECS) - 1),
    extra=st.integers(0, 30),
    minute_sessions=st.integers(0, 4),
    drop=st.lists(st.integers(0, 959), max_size=40),
)
@settings(max_examples=25, deadline=None, derandomize=True)
def test_fast_features_equal_the_reference(
    seed: int, spec_i: int, extra: int, minute_sessions: int, drop: list[int]
) -> None:
    spec = SPECS[spec_i]
    end = date(2024, 3, 29)
    days = trading_days(date(2023, 1, 1), end)
    m = synthetic_market(
        days[-(spec.warmup + extra)], end, seed=seed, minute_sessions=minute_sessions or 1
    )
    minute = m.minute if minute_sessions else None
    if minute is not None and drop:  # missing bars inside the sessions
        minute = minute.with_row_index("i").filter(~pl.col("i").is_in(drop)).drop("i")
    d, mm = _arrays(m.daily, minute)
    fast, ref = sample(d, mm, spec), reference_sample(d, mm, spec)
    assert np.array_equal(fast.m_intra, ref.m_intra)
    np.testing.assert_allclose(fast.x_daily, ref.x_daily, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.x_intra, ref.x_intra, rtol=1e-5, atol=1e-6)


def test_served_inputs_are_the_forecasters_windows() -> None:
    """``ServedModel.inputs`` standardises through ``apply_norm``, like ``Forecaster.predict``:
    the session summaries of sessions without intraday bars stay zero after standardisation."""
    from torch import nn

    from models.features import DAILY_FEATURES, INTRADAY_FEATURES, TOKEN_FEATURES, build_windows
    from models.forecaster import Forecaster
    from models.normalise import NormStats, apply_norm
    from quant.api.serving import ServedModel

    spec = SPECS[0]
    rng = np.random.default_rng(3)
    nd, ni = len(TOKEN_FEATURES), len(INTRADAY_FEATURES)
    norm = NormStats(
        daily_mean=rng.normal(size=nd).astype(np.float32),
        daily_std=rng.uniform(0.5, 2, nd).astype(np.float32),
        intra_mean=rng.normal(size=ni).astype(np.float32),
        intra_std=rng.uniform(0.5, 2, ni).astype(np.float32),
    )
    fc = Forecaster(nn.Identity(), spec, norm)
    served = ServedModel(None, fc, True, "SYN")  # type: ignore[arg-type]
    end = date(2024, 3, 29)
    m = synthetic_market(trading_days(date(2023, 1, 1), end)[-spec.warmup - 2], end, seed=5)
    minute = m.minute.filter(pl.col("session") == end)  # intraday bars of the last session only
    d, mm = _arrays(m.daily, minute)
    xd, xi, mi, _ = served.inputs(sample(d, mm, spec))
    raw = build_windows(
        m.daily, resample_intraday(minute, spec.intraday_minutes), spec, sessions=[end], strict=True
    )
    w = apply_norm(raw, fc.norm)  # what Forecaster.predict feeds the model
    np.testing.assert_allclose(xd, w.x_daily[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xi, w.x_intra[0], rtol=1e-5, atol=1e-5)
    assert np.array_equal(mi, w.m_intra[0])
    assert (xd[:-1, len(DAILY_FEATURES) :] == 0).all()  # no summaries without intraday bars
