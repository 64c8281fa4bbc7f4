"""One walk-forward evaluation from the store to the written report (what ``quant evaluate``
runs: the command only parses its options and prints ``summary``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from feeds.read import resolve_source
from models import checkpoint
from models.config import ForecastConfig
from models.executor import make_executor
from models.factory import ALL_MODELS
from models.features import FeatureError, build_windows, spec_for_series
from models.inputs import load_daily, load_intraday
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
    if len(windows) == 0:
        raise FeatureError(
            f"too little history: {daily.height} daily sessions give no complete window "
            f"(the features need {cfg.features.warmup} consecutive sessions)"
        )
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


@dataclass(frozen=True)
class EvaluationRequest:
    """What one ``quant evaluate`` asks for (symbols and sources already resolved from the
    configuration by the caller)."""

    symbol: str
    intraday_symbol: str
    start: date
    end: date | None
    models: tuple[str, ...]
    out: Path
    source_priority: tuple[str, ...]  # store.source_priority: which daily source is read
    source: str | None = None  # the daily source (None: the preferred one)
    cross_check_source: str | None = None  # a second daily source compared with the first
    retrain_every: int | None = None
    max_epochs: int | None = None
    ray_address: str | None = None
    command: str = ""


def parse_models(text: str) -> tuple[str, ...]:
    """``"fused,lstm"`` -> ``("fused", "lstm")``; ``ValueError`` naming unknown models."""
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = sorted(set(models) - set(ALL_MODELS))
    if unknown:
        raise ValueError(f"unknown models {unknown}; known: {ALL_MODELS}")
    return models


def with_overrides(
    cfg: ForecastConfig,
    *,
    seeds: int | None = None,
    select: bool | None = None,
    executor: str | None = None,
    workers: int | None = None,
    intraday_minutes: int | None = None,
) -> ForecastConfig:
    """``cfg`` with the options given (None: keep the configured value)."""
    ev = {"seeds": seeds, "select": select, "executor": executor, "workers": workers}
    feat = {"intraday_minutes": intraday_minutes}
    return cfg.model_copy(
        update={
            "evaluation": cfg.evaluation.model_copy(
                update={k: v for k, v in ev.items() if v is not None}
            ),
            "features": cfg.features.model_copy(
                update={k: v for k, v in feat.items() if v is not None}
            ),
        }
    )


def evaluate_store(
    connect: Callable[[], duckdb.DuckDBPyConnection],
    cfg: ForecastConfig,
    req: EvaluationRequest,
    *,
    note: Callable[[str], None] = log.info,
) -> EvaluationRun:
    """Read the bars ``req`` names through ``connect()`` (the connection is closed before the
    hours of fitting), apply the amount policy and run ``evaluate``; ``note`` gets a line
    describing the inputs."""
    minutes = cfg.features.intraday_minutes
    con = connect()
    try:
        src = req.source or resolve_source(con, req.symbol, "1d", req.source_priority)
        daily = load_daily(con, req.symbol, source=src, end=req.end)
        intraday = load_intraday(
            con, req.intraday_symbol, minutes, end=req.end, priority=req.source_priority
        )
        other = None
        if req.cross_check_source is not None:
            try:
                other = load_daily(con, req.symbol, source=req.cross_check_source, end=req.end)
            except LookupError:
                other = None
    finally:
        con.close()
    # One policy for a series without turnover (docs/forecaster.md): drop amount_z.
    cfg = cfg.model_copy(update={"features": spec_for_series(daily, cfg.features)})
    note(
        f"daily {req.symbol} [{src}]: {daily.height} sessions; intraday {req.intraday_symbol} "
        f"{minutes}m: {intraday.height} bars; {cfg.evaluation.seeds} seeds, executor "
        f"{cfg.evaluation.executor}"
    )
    meta = {
        "command": req.command,
        "created_at": datetime.now().astimezone().isoformat(),
        "symbol": req.symbol,
        "daily_source": src,
        "intraday_symbol": req.intraday_symbol,
        "intraday_frequency": f"{minutes}m",
        "cross_check_source": req.cross_check_source,
    }
    return evaluate(
        daily,
        None if intraday.is_empty() else intraday,
        cfg,
        start=req.start,
        end=req.end,
        models=req.models,
        out=req.out,
        meta=meta,
        retrain_every=req.retrain_every,
        max_epochs=req.max_epochs,
        ray_address=req.ray_address,
        other=other,
    )


def summary(doc: dict[str, Any]) -> list[str]:
    """One line per model (n, accuracy with its interval, p, log loss, seed spread), then the
    verdict: what ``quant evaluate`` prints."""
    lines = []
    for name, rec in doc["models"].items():
        sp = rec.get("seed_spread")
        spread = (
            f" seeds {100 * sp['accuracy_min']:.1f}-{100 * sp['accuracy_max']:.1f}%" if sp else ""
        )
        lines.append(
            f"{name:>20}: n={rec['n']:5d} acc={100 * rec['accuracy']:.2f}% "
            f"[{100 * rec['ci_low']:.1f}, {100 * rec['ci_high']:.1f}] "
            f"p={rec['p_value']:.3f} logloss={rec['log_loss']:.4f}{spread}"
        )
    return [*lines, doc.get("verdict", "")]
