"""The replay's comparison arms, each through the code path it names.

- ``frozen``: the replay's first champion, never updated (``Forecaster`` predictions);
- ``retrain_60``, ``logistic``, ``majority``: ``models.walkforward.walk_forward``, the very
  function ``quant evaluate`` runs (expanding window, a retrain every ``retrain_every`` sessions
  on every label settled by the block's first session, warm starts as configured);
- ``persistence`` (``models.baselines.persistence``) and ``always_up`` (P(up) = 1, literally).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from models.baselines import persistence
from models.config import ForecastConfig
from models.executor import Executor
from models.forecaster import Forecaster
from models.labels import next_direction
from models.walkforward import walk_forward
from quant.market_data import MarketData

log = logging.getLogger(__name__)

WALK_FORWARD_ARMS = ("retrain_60", "logistic", "majority")


def predict_on(fc: Forecaster, data: MarketData, sessions: list[date]) -> dict[date, float]:
    """P(up) of ``fc`` for every session of ``sessions`` that ``data`` has a window for."""
    want = np.isin(data.windows.sessions, np.array(sessions, dtype="datetime64[D]"))
    idx = np.nonzero(want)[0]
    p, _ = fc.predict_windows(data.windows.take(idx))
    return {data.sessions[i]: float(q) for i, q in zip(idx, p, strict=True)}


def walk_forward_arms(
    full: MarketData,
    cfg: ForecastConfig,
    sessions: list[date],
    *,
    model: str,
    retrain_every: int,
    cache: Path,
    executor: Executor,
) -> dict[str, dict[date, float]]:
    """``retrain_60`` (torch ``model``), ``logistic`` and ``majority`` on ``sessions``, from
    ``cache`` (a parquet file) when an earlier, interrupted run of the replay wrote it."""
    if cache.exists():
        frame = pl.read_parquet(cache)
    else:
        names = {model: "retrain_60", "logistic": "logistic", "majority": "majority"}
        r = walk_forward(
            full.windows,
            next_direction(full.daily, cfg.features.horizon),
            cfg,
            start=sessions[0],
            end=sessions[-1],
            models=tuple(names),
            retrain_every=retrain_every,
            executor=executor,
        )
        frame = r.predictions.select(
            pl.col("session").cast(pl.Date),
            pl.col("model").replace_strict(names),
            "p_up",
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp")
        frame.write_parquet(tmp)
        tmp.replace(cache)
        log.info("walk-forward arms: %d fits in %.0fs", len(r.fits), r.seconds)
    out: dict[str, dict[date, float]] = {a: {} for a in WALK_FORWARD_ARMS}
    for s, m, p in frame.iter_rows():
        out[m][s] = float(p)
    return out


def rule_arms(full: MarketData, sessions: list[date]) -> dict[str, dict[date, float]]:
    """``persistence`` and ``always_up`` (P(up) = 1 on every session)."""
    idx = np.nonzero(np.isin(full.windows.sessions, np.array(sessions, dtype="datetime64[D]")))[0]
    days = [full.sessions[i] for i in idx]
    pers = persistence(full.windows.take(idx))
    return {
        "persistence": dict(zip(days, pers.tolist(), strict=True)),
        "always_up": dict.fromkeys(days, 1.0),
    }
