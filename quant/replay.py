"""Replay: the daily pipeline run day by day over history, and the honest comparison.

A working copy of the store's bars is made under the output folder (the live registry and
signals are never touched).  A first champion is trained from scratch on data up to D1 (minus
the gate window); then ``run_daily`` runs for every session D1..D2 with reads capped at each
day's close, fine-tuning with the production procedure and publishing a signal.  Those signals
are the ``continual`` series.  The fine-tune's work budget is a fixed number of optimiser steps
(no throughput calibration), so two replays of the same span give bit-identical predictions;
the wall-clock cap stays on, and a day it cuts is counted (``reproducible_budget``).  On the same
sessions the report scores the arms of ``quant.replay_arms`` (frozen, retrain_60, logistic,
persistence, majority, always_up) with ``quant.replay_report``.

Checkpointed: the working copy, the registry and every finished day live under the output
folder, so a replay started again with the same settings resumes where it stopped (done days
are not re-run; the walk-forward arms are cached once computed).
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import torch

from feeds.lock import StoreLock
from feeds.read import daily_bars, resolve_source
from feeds.snapshot import copy_database
from feeds.store import open_store
from models.arms import score_arms
from models.executor import Executor, make_executor
from quant import registry
from quant.config import QuantConfig, models_dir
from quant.finetune import (
    gate_split,
    members,
    model_hash,
    train_scratch,
    window_of,
)
from quant.market_data import MarketData
from quant.pipeline import run_daily, warm_up_torch
from quant.replay_arms import WALK_FORWARD_ARMS, predict_on, rule_arms, walk_forward_arms
from quant.replay_report import ARMS, markdown, pairs
from quant.signals import signals_between

__all__ = ["ARMS", "ReplayError", "ReplayOptions", "markdown", "run_replay"]

log = logging.getLogger(__name__)

_STATE = "replay_state.json"
_LIVE_TABLES = (
    "pipeline_runs",
    "model_versions",
    "model_champion",
    "model_training_data",
    "gate_decisions",
    "signals",
)


class ReplayError(ValueError):
    """The replay cannot run as asked (e.g. the output folder holds another replay)."""


@dataclass(frozen=True)
class ReplayOptions:
    symbol: str
    start: date
    end: date
    out: Path
    max_steps: int | None = None  # per member per day; None: pipeline.finetune.max_steps
    budget_s: float | None = None  # wall-clock cap per day; None: pipeline.finetune.budget_s
    retrain_every: int = 60
    arms: tuple[str, ...] = ARMS  # continual and frozen always run


def working_copy(src: duckdb.DuckDBPyConnection, path: Path) -> duckdb.DuckDBPyConnection:
    """A fresh store at ``path`` holding the bars of ``src`` (no registry, runs or signals)."""
    copy_database(src, path)
    con = open_store(path)
    for t in _LIVE_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {t}").fetchall()
    return con


def replay_config(cfg: QuantConfig, o: ReplayOptions) -> QuantConfig:
    """The production configuration with the replay's folders, a fixed step budget (no
    throughput calibration) and the wall-clock cap."""
    f = cfg.pipeline.finetune
    ft = f.model_copy(
        update={
            "max_steps": o.max_steps or f.max_steps,
            "budget_s": o.budget_s or f.budget_s,
            "calibrate_steps": False,
        }
    )
    p = cfg.pipeline.model_copy(
        update={"models_dir": o.out / "models", "reports_dir": o.out / "daily", "finetune": ft}
    )
    return cfg.model_copy(update={"pipeline": p})


def _fingerprint(cfg: QuantConfig, o: ReplayOptions) -> str:
    return registry.config_hash(
        {
            "options": [o.symbol, o.start, o.end, o.retrain_every],
            "forecast": cfg.forecast.model_dump(),
            "pipeline": cfg.pipeline.model_dump(exclude={"scheduler"}),
            "intraday": cfg.data.intraday_symbol,
        }
    )


def _bootstrap(
    con: duckdb.DuckDBPyConnection, cfg: QuantConfig, o: ReplayOptions, ex: Executor
) -> str:
    """The first champion: the walk-forward's block fit on data to D1, gate window held out
    (no wall-clock budget: it stops on early stopping or max_epochs, reproducible)."""
    data = MarketData.load(con, cfg, o.start, symbol=o.symbol)
    pool, _ = gate_split(len(data.windows), cfg.pipeline.gate.window_sessions)
    out = train_scratch(data, pool, cfg.forecast, cfg.pipeline.initial.model, executor=ex)
    start, end = window_of(data, pool)
    v = registry.register(
        con,
        out.forecaster,
        models_dir(cfg),
        parent_id=None,
        kind="initial",
        cfg_hash=model_hash(cfg.forecast, cfg.pipeline.initial.model, cfg.forecast.train),
        train_start=start,
        train_end=end,
        metrics=out.metrics(),
        promote_reason=f"replay bootstrap at {o.start}",
    )
    return v.version_id


def _open(
    store: Path, cfg: QuantConfig, o: ReplayOptions, ex: Executor
) -> tuple[duckdb.DuckDBPyConnection, str, bool]:
    """(working copy, first champion's id, resumed?): a new working copy and first champion, or
    those of an interrupted replay of the same settings in ``o.out``."""
    state_path, db = o.out / _STATE, o.out / "replay_store.duckdb"
    fp = _fingerprint(cfg, o)
    if state_path.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("fingerprint") != fp:
            raise ReplayError(
                f"{o.out} holds a replay with other settings ({state_path}); "
                "use a fresh --out or delete that folder"
            )
        log.info("resuming the replay in %s", o.out)
        return open_store(db), str(state["frozen_id"]), True
    with StoreLock(store, f"replay copy to {o.out}"):
        src = open_store(store)
        try:
            con = working_copy(src, db)
        finally:
            src.close()
    frozen_id = _bootstrap(con, cfg, o, ex)
    tmp = state_path.with_name(_STATE + ".tmp")
    tmp.write_text(json.dumps({"fingerprint": fp, "frozen_id": frozen_id}), encoding="utf-8")
    tmp.replace(state_path)
    return con, frozen_id, False


def run_replay(store: Path, cfg: QuantConfig, o: ReplayOptions) -> dict[str, Any]:
    """Run (or resume) the replay; writes ``replay.json``, ``replay.md`` and
    ``predictions.parquet``.  The store is locked only while its bars are copied."""
    unknown = sorted(set(o.arms) - set(ARMS))
    if unknown:
        raise ReplayError(f"unknown replay arms {unknown}; known: {ARMS}")
    t_all = time.perf_counter()
    o.out.mkdir(parents=True, exist_ok=True)
    rcfg = replay_config(cfg, o)
    # One thread, set before the first fit: the same thread count gives the same floating-point
    # reductions, so the same inputs give bit-identical weights.
    torch.set_num_threads(rcfg.pipeline.threads)
    warm_up_torch()
    # From-scratch fits run where `quant evaluate` runs them (forecast.evaluation.executor).
    ev = rcfg.forecast.evaluation
    ex = make_executor(ev.executor, workers=ev.workers)  # type: ignore[arg-type]
    try:
        con, frozen_id, resumed = _open(store, rcfg, o, ex)
        try:
            return _run(con, rcfg, o, frozen_id, resumed, t_all, ex)
        finally:
            con.close()
    finally:
        ex.close()


def _run(
    con: duckdb.DuckDBPyConnection,
    rcfg: QuantConfig,
    o: ReplayOptions,
    frozen_id: str,
    resumed: bool,
    t_all: float,
    ex: Executor,
) -> dict[str, Any]:
    source = resolve_source(con, o.symbol, "1d", rcfg.store.source_priority)
    bars = daily_bars(con, o.symbol, start=o.start, end=o.end, source=source)
    sessions: list[date] = bars["session"].to_list()
    if len(sessions) < 2:
        raise ReplayError(f"fewer than two {o.symbol} sessions in [{o.start}, {o.end}]")
    t_loop = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for i, d in enumerate(sessions):
        r = run_daily(con, rcfg, d, symbol=o.symbol, ingest=False)
        secs = {k: v.get("seconds", 0.0) for k, v in r.steps.items()}
        ft = r.steps.get("finetune", {}).get("detail", {})
        runs.append({"date": d, "status": r.status, "seconds": secs, "finetune": ft})
        if r.status not in ("done", "already_done"):
            log.warning("replay %s: %s (%s)", d, r.status, r.error)
        if i % 10 == 0:
            log.info("replay %d/%d %s %.0fs", i + 1, len(sessions), d, time.perf_counter() - t_loop)
    loop_s = time.perf_counter() - t_loop
    t_arms = time.perf_counter()
    # Scoring only: labels of sessions up to D2 may settle after D2 (the next session's close).
    last = daily_bars(con, o.symbol, source=source)["session"].max()
    assert isinstance(last, date)
    full = MarketData.load(con, rcfg, last, symbol=o.symbol)
    labelled = [s for s in sessions if s in set(full.sessions)]
    frozen_fc = registry.load_verified(registry.get_version(con, frozen_id), models_dir(rcfg))
    series: dict[str, dict[date, float]] = {
        "continual": {
            s.decision_session: s.p_up for s in signals_between(con, o.symbol, all_versions=False)
        },
        "frozen": predict_on(frozen_fc, full, labelled),
    }
    if set(WALK_FORWARD_ARMS) & set(o.arms):
        series |= walk_forward_arms(
            full,
            rcfg.forecast,
            labelled,
            model=rcfg.pipeline.initial.model,
            retrain_every=o.retrain_every,
            cache=o.out / "arms" / "walk_forward.parquet",
            executor=ex,
        )
    series |= rule_arms(full, labelled)
    arms = [a for a in ARMS if a in ("continual", "frozen") or a in o.arms]
    common = [s for s in labelled if all(s in series[a] for a in arms)]
    lab = full.label_by_session
    preds = {a: np.array([series[a][s] for s in common], dtype=np.float64) for a in arms}
    labels = np.array([lab[s] for s in common], dtype=np.int64)
    models = score_arms(labels, preds)
    doc = _document(o, rcfg, runs, models, loop_s, time.perf_counter() - t_arms)
    doc["paired_bootstrap"] = pairs(labels, preds, models)
    doc["promotions"] = sum(h["action"] == "promote" for h in registry.champion_history(con))
    doc["gate_decisions"] = con.execute("SELECT count(*) FROM gate_decisions").fetchall()[0][0]
    doc["reproducible_budget"] = _budget_doc(rcfg, runs, len(members(frozen_fc.model)))
    doc["resumed"] = resumed
    doc["sessions_scored"] = [str(common[0]), str(common[-1])] if common else []
    doc["predictions"] = {
        "session": [str(s) for s in common],
        "label": labels.tolist(),
        **{a: p.tolist() for a, p in preds.items()},
    }
    doc["total_seconds"] = round(time.perf_counter() - t_all, 1)
    frame = pl.DataFrame({"session": common, "label": labels, **preds})
    frame.write_parquet(o.out / "predictions.parquet")
    (o.out / "replay.json").write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    (o.out / "replay.md").write_text(markdown(doc), encoding="utf-8")
    return doc


def _budget_doc(cfg: QuantConfig, runs: list[dict[str, Any]], n_members: int) -> dict[str, Any]:
    f = cfg.pipeline.finetune
    fts = [r["finetune"] for r in runs if r["finetune"].get("kind") == "finetune"]
    cut = sum("budget" in str(ft.get("stopped", "")) for ft in fts)
    steps = [int(ft.get("steps", 0)) for ft in fts]
    return {
        "max_steps": f.max_steps,  # optimiser steps per member per day
        "members": n_members,
        "wall_cap_s": f.budget_s,
        "calibrate_steps": f.calibrate_steps,
        "torch_threads": cfg.pipeline.threads,
        "days_cut_by_wall_clock": cut,
        "reproducible": cut == 0,
        "steps_per_day_median": statistics.median(steps) if steps else None,
        "days_at_step_budget": sum("max_steps" in str(ft.get("stopped", "")) for ft in fts),
    }


def _document(
    o: ReplayOptions,
    cfg: QuantConfig,
    runs: list[dict[str, Any]],
    models: dict[str, dict[str, Any]],
    loop_s: float,
    arms_s: float,
) -> dict[str, Any]:
    fts = [r["finetune"] for r in runs if r["finetune"].get("kind") == "finetune"]
    over = [float(f["overshoot_s"]) for f in fts]
    rate = [float(f["samples_per_s"]) for f in fts]
    other = [sum(v for k, v in r["seconds"].items() if k != "finetune") for r in runs]
    return {
        "symbol": o.symbol,
        "from": str(o.start),
        "to": str(o.end),
        "budget_s": cfg.pipeline.finetune.budget_s,
        "init_budget_s": None,  # the first champion has no wall-clock budget (reproducible)
        "created_at": datetime.now().astimezone().isoformat(),
        "days_run": len(runs),
        "days_failed": sum(r["status"] not in ("done", "already_done") for r in runs),
        "promotions": None,
        "models": models,
        "budget_overshoot_max_s": max(over) if over else None,
        "budget_overshoot_median_s": round(statistics.median(over), 3) if over else None,
        "sessions_per_minute": round(60 * len(runs) / loop_s, 2) if loop_s else None,
        "finetune_samples_per_s_median": round(statistics.median(rate), 1) if rate else None,
        "pipeline_s_per_day_excl_finetune_median": round(statistics.median(other), 3)
        if other
        else None,
        "pipeline_s_per_day_excl_finetune_mean": round(statistics.mean(other), 3)
        if other
        else None,
        "loop_seconds": round(loop_s, 1),
        "comparison_arms_seconds": round(arms_s, 1),
        "config": {
            "gate": cfg.pipeline.gate.model_dump(),
            "finetune": cfg.pipeline.finetune.model_dump(),
            "features": cfg.forecast.features.model_dump(),
        },
    }
