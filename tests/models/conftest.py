"""Fixtures of the forecaster tests: a small synthetic market in an in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from feeds.store import open_store, transaction
from feeds.synthetic import SYNTHETIC_SYMBOL, synthetic_market
from feeds.writer import write_bars
from models.config import FeatureSpec, ForecastConfig, ModelSettings, TrainSettings
from models.inputs import load_daily, load_intraday
from models.labels import next_direction

# ../shared/data/real beside the repository root; read in place, never copied.
REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
real_data = pytest.mark.skipif(
    not REAL.exists(), reason=f"real data dir ../shared/data/real absent ({REAL.resolve()})"
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The CI box has 2 shared cores: every test runs torch on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class Market:
    daily: pl.DataFrame  # as read back from the store (UTC-aware ts)
    intraday: pl.DataFrame  # 5-minute bars resampled from the stored 1-minute bars
    labels: pl.DataFrame


def small_config(**train: object) -> ForecastConfig:
    """Tiny windows and model, few epochs: a test trains in about a second."""
    return ForecastConfig(
        features=FeatureSpec(daily_window=10, zscore_window=10, vol_window=10),
        model=ModelSettings(d_model=8, short_heads=2, lstm_hidden=8),
        train=TrainSettings(max_epochs=3, batch_size=128, patience=2, **train),
    )


@pytest.fixture(scope="session")
def market() -> Market:
    """~300 synthetic sessions (2021-2022), the last 150 with 1-minute bars, via the store."""
    m = synthetic_market(date(2021, 6, 1), date(2022, 9, 30), seed=3, minute_sessions=150)
    con = open_store(":memory:")
    with transaction(con):
        write_bars(con, pl.concat([m.daily, m.minute]), file_sha256=None)
    daily = load_daily(con, SYNTHETIC_SYMBOL)
    intraday = load_intraday(con, SYNTHETIC_SYMBOL, 5)
    con.close()
    return Market(daily, intraday, next_direction(daily))


@pytest.fixture
def cfg() -> ForecastConfig:
    return small_config()


def label_array(labels: pl.DataFrame, sessions: np.ndarray) -> np.ndarray:
    """Labels aligned with window sessions (every session must have one)."""
    lab = pl.DataFrame({"session": sessions.astype("datetime64[D]")}).join(
        labels, on="session", how="left", maintain_order="left"
    )
    y = lab.get_column("label")
    assert y.null_count() == 0, "a window session has no settled label"
    return y.to_numpy().astype(np.int64)
