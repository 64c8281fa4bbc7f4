"""The gate follows the information: a signal planted only in intraday bars pulls it towards the
intraday branch, a signal planted only in daily bars pulls it towards the daily branch.

This proves the gating works on the synthetic market; it is not an accuracy claim.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from feeds.resample import resample_intraday
from feeds.synthetic import synthetic_market
from models.config import FeatureSpec, ForecastConfig, ModelSettings, TrainSettings
from models.factory import build, model_config
from models.features import build_windows
from models.labels import next_direction
from models.normalise import apply_norm, fit_norm
from models.train import fit, predict
from tests.models.conftest import label_array

CFG = ForecastConfig(
    features=FeatureSpec(daily_window=10, zscore_window=10, vol_window=10),
    model=ModelSettings(d_model=8, short_heads=2, gate_penalty=0.01),
    train=TrainSettings(max_epochs=25, patience=6, lr=5e-3, seed=1),
)

STRENGTH = 0.2  # weak enough that the model must lean on the informative branch


@pytest.fixture(scope="module")
def plain() -> tuple[pl.DataFrame, pl.DataFrame]:
    m = synthetic_market(date(2019, 1, 1), date(2021, 6, 30), seed=11)
    return m.daily, m.minute.drop("frequency")


def _intraday_signal(daily: pl.DataFrame, minute: pl.DataFrame) -> pl.DataFrame:
    """Shift volume from morning to afternoon bars before an up session (daily sum unchanged)."""
    up = next_direction(daily).select("session", (2 * pl.col("label") - 1).alias("s"))
    local_hour = pl.col("ts").dt.convert_time_zone("Asia/Shanghai").dt.hour()
    pm = local_hour >= 13
    f = STRENGTH * pl.col("s").fill_null(0)
    tot = [
        pl.col("volume").filter(pm == x).sum().over("session").alias(n)
        for x, n in ((False, "vm"), (True, "va"))
    ]
    return (
        minute.join(up, on="session", how="left")
        .with_columns(tot)
        .with_columns(
            pl.when(pm)
            .then(pl.col("volume") * (1 + f * pl.min_horizontal("vm", "va") / pl.col("va")))
            .otherwise(pl.col("volume") * (1 - f * pl.min_horizontal("vm", "va") / pl.col("vm")))
        )
        .drop("s", "vm", "va")
    )


def _daily_signal(daily: pl.DataFrame) -> pl.DataFrame:
    """Raise daily volume before an up session, lower it before a down one (intraday untouched)."""
    up = next_direction(daily).select("session", "label")
    return (
        daily.join(up, on="session", how="left")
        .with_columns(
            pl.col("volume") * (1 - STRENGTH + 2 * STRENGTH * pl.col("label").fill_null(0))
        )
        .drop("label")
    )


def _train(daily: pl.DataFrame, minute: pl.DataFrame) -> tuple[float, float]:
    """Fit the fused model (three seeds) on the first 75% of sessions; gate mean and accuracy
    of the seeds' mean forecast on the rest.  One seed alone was fragile: the same code gave a
    gate of 0.55 or 0.99 depending on the order the suite ran in."""
    w = build_windows(daily, resample_intraday(minute, 5), CFG.features)
    lab = next_direction(daily)
    w = w.take(np.nonzero(np.isin(w.sessions, lab.get_column("session").to_numpy()))[0])
    y = label_array(lab, w.sessions)
    cut = int(0.75 * len(w))
    tr_idx, te_idx = np.arange(cut), np.arange(cut, len(w))
    norm = fit_norm(w.take(tr_idx))
    tr, te = apply_norm(w.take(tr_idx), norm), apply_norm(w.take(te_idx), norm)
    ps, gs = [], []
    for seed in (1, 2, 3):
        model = build(model_config("fused", CFG.features, CFG.model), seed=seed)
        fit(model, tr, y[tr_idx], CFG.train.model_copy(update={"seed": seed}))
        p, g = predict(model, te)
        ps.append(p)
        gs.append(g.mean())
    p = np.mean(ps, axis=0)
    return float(np.mean(gs)), float(np.mean((p > 0.5) == (y[te_idx] > 0)))


def test_gate_moves_to_the_branch_that_carries_the_signal(
    plain: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    daily, minute = plain
    gate_intra, acc_intra = _train(daily, _intraday_signal(daily, minute))
    gate_daily, acc_daily = _train(_daily_signal(daily), minute)
    assert acc_intra > 0.65, f"intraday signal not learned: accuracy {acc_intra:.3f}"
    assert acc_daily > 0.65, f"daily signal not learned: accuracy {acc_daily:.3f}"
    assert gate_intra > 0.7, f"gate did not move to the intraday branch: {gate_intra:.3f}"
    assert gate_daily < 0.3, f"gate did not move to the daily branch: {gate_daily:.3f}"
