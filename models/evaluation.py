"""One walk-forward evaluation from bars to the written report (what ``quant evaluate`` runs)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models import checkpoint
from models.config import ForecastConfig
from models.executor import make_executor
from models.features import build_windows
from models.labels import next_direction
from models.report import evaluation_document, write_report
from models.walkforward import WalkForwardResult, walk_forward

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationRun:
    doc: dict[str, Any]
    result: WalkForwardResult
    paths: list[Path]


def cross_check(daily: pl.DataFrame, other: pl.DataFrame, horizon: int) -> dict[str, Any]:
    """Agreement of the labels and closes of two daily sources over their common sessions."""
    a = next_direction(daily, horizon).join(next_direction(other, horizon), on="session")
    closes = daily.select("session", "close").join(other.select("session", "close"), on="session")
    rel = ((closes["close"] - closes["close_right"]).abs() / closes["close"]).to_numpy()
    return {
        "common_sessions": a.height,
        "label_agreement": float(np.mean(a["label"].to_numpy() == a["label_right"].to_numpy()))
        if a.height
        else None,
        "max_rel_close_diff": float(rel.max()) if rel.size else None,
    }


def evaluate(
    daily: pl.DataFrame,
    intraday: pl.DataFrame | None,
    cfg: ForecastConfig,
    *,
    start: date,
    end: date | None,
    models: tuple[str, ...],
    out: Path,
    meta: dict[str, Any],
    retrain_every: int | None = None,
    max_epochs: int | None = None,
    ray_address: str | None = None,
    other: pl.DataFrame | None = None,
) -> EvaluationRun:
    """Walk forward over ``[start, end]``, score, and write the report and checkpoints."""
    t0 = time.perf_counter()
    ev = cfg.evaluation
    windows = build_windows(daily, intraday, cfg.features)
    labels = next_direction(daily, cfg.features.horizon)
    ex = make_executor(ev.executor, workers=ev.workers, address=ray_address)  # type: ignore[arg-type]
    try:
        res = walk_forward(
            windows,
            labels,
            cfg,
            start=start,
            end=end,
            models=models,
            retrain_every=retrain_every,
            max_epochs=max_epochs,
            executor=ex,
        )
    finally:
        ex.close()
    out.mkdir(parents=True, exist_ok=True)
    pred = res.predictions.sort("session", "model")
    pred.write_parquet(out / "predictions.parquet")
    if not res.seed_predictions.is_empty():
        res.seed_predictions.sort("session", "model", "seed").write_parquet(
            out / "seed_predictions.parquet"
        )
    if not res.int8.is_empty():
        res.int8.write_parquet(out / "int8_predictions.parquet")
    info: dict[str, Any] = {
        **meta,
        "start": str(start),
        "end": str(pred.get_column("session").max()),
        "retrain_every": retrain_every or ev.retrain_every,
        "max_epochs": max_epochs,
        "seeds": ev.seeds,
        "executor": ev.executor,
        "seconds": res.seconds,
        "config": json.loads(cfg.model_dump_json()),
    }
    if other is not None:
        check = cross_check(daily, other, cfg.features.horizon)
        info["cross_check"] = {"source": meta.get("cross_check_source"), **check}
    doc = evaluation_document(
        pred,
        res.int8,
        info,
        ev.ablation_end,
        seeds=res.seed_predictions,
        selection=res.selection,
    )
    doc["fits"] = res.fits
    doc["permutation_importance"] = res.importance
    for name, fc in res.final.items():
        checkpoint.save(out / "checkpoints" / f"{name}.pt", fc.checkpoint())
    doc["wall_seconds"] = time.perf_counter() - t0
    paths = write_report(doc, pred, out)
    return EvaluationRun(doc, res, paths)
