"""Replay: the daily pipeline run day by day over history, and the honest comparison.

A working copy of the store's bars is made under the output folder (the live registry and
signals are never touched).  A first champion is trained from scratch on data up to D1 (minus
the gate window); then ``run_daily`` runs for every session D1..D2 with reads capped at each
day's close, fine-tuning for ``budget`` seconds a day and publishing a signal.  Those signals
are the continual model's series.  On the same sessions the report scores:

- ``frozen``: the first champion, never updated;
- ``retrain_60``: a fresh model trained from scratch every 60 sessions on everything labelled
  by then (the walk-forward evaluation's scheme);
- ``persistence`` (tomorrow repeats today's direction) and ``always_up``;

each with a Wilson interval, an exact binomial p-value against 50% and exact McNemar tests
against every other arm.
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

from feeds.read import daily_bars, resolve_source
from feeds.snapshot import copy_database
from feeds.store import open_store
from models.baselines import persistence
from models.features import FeatureError
from models.forecaster import Forecaster
from models.metrics import binomial_p_value, mcnemar_p_value, wilson_interval
from models.normalise import apply_norm
from models.train import predict
from quant import registry
from quant.config import QuantConfig
from quant.finetune import (
    MarketData,
    gate_split,
    load_market,
    model_hash,
    train_scratch,
    window_of,
)
from quant.lock import StoreLock
from quant.pipeline import models_dir, run_daily, warm_up_torch
from quant.signals import signals_between

log = logging.getLogger(__name__)

ARMS = ("continual", "frozen", "retrain_60", "persistence", "always_up")
_LIVE_TABLES = (
    "pipeline_runs",
    "model_versions",
    "model_champion",
    "model_training_data",
    "gate_decisions",
    "signals",
)


@dataclass(frozen=True)
class ReplayOptions:
    symbol: str
    start: date
    end: date
    budget_s: float
    out: Path
    init_budget_s: float = 30.0
    retrain_every: int = 60


def working_copy(src: duckdb.DuckDBPyConnection, path: Path) -> duckdb.DuckDBPyConnection:
    """A fresh store at ``path`` holding the bars of ``src`` (no registry, runs or signals)."""
    copy_database(src, path)
    con = open_store(path)
    for t in _LIVE_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {t}").fetchall()
    return con


def _replay_config(cfg: QuantConfig, o: ReplayOptions) -> QuantConfig:
    p = cfg.pipeline.model_copy(
        update={
            "models_dir": o.out / "models",
            "reports_dir": o.out / "daily",
            "initial": cfg.pipeline.initial.model_copy(update={"budget_s": o.init_budget_s}),
        }
    )
    return cfg.model_copy(update={"pipeline": p})


def _bootstrap(con: duckdb.DuckDBPyConnection, cfg: QuantConfig, o: ReplayOptions) -> str:
    """The first champion: trained from scratch on data to D1, gate window held out."""
    data = _market(con, cfg, o.symbol, o.start)
    pool, _ = gate_split(len(data.windows), cfg.pipeline.gate.window_sessions)
    out = train_scratch(
        data, pool, cfg.forecast, cfg.pipeline.initial.model, budget_s=o.init_budget_s
    )
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


def _market(
    con: duckdb.DuckDBPyConnection, cfg: QuantConfig, symbol: str, as_of: date
) -> MarketData:
    intraday = cfg.data.intraday_symbol if cfg.pipeline.use_intraday else None
    return load_market(
        con,
        symbol,
        cfg.forecast,
        as_of,
        intraday_symbol=intraday,
        source_priority=cfg.store.source_priority,
    )


def _retrain_predictions(
    con: duckdb.DuckDBPyConnection,
    cfg: QuantConfig,
    o: ReplayOptions,
    sessions: list[date],
    full: MarketData,
) -> dict[date, float]:
    out: dict[date, float] = {}
    for b in range(0, len(sessions), o.retrain_every):
        block = sessions[b : b + o.retrain_every]
        data = _market(con, cfg, o.symbol, block[0])
        fit = train_scratch(
            data,
            np.arange(len(data.windows)),
            cfg.forecast,
            cfg.pipeline.initial.model,
            budget_s=o.init_budget_s,
        )
        out |= _predict_on(fit.forecaster, full, block)
        log.info("retrain_60 block from %s: %d sessions", block[0], len(block))
    return out


def _predict_on(fc: Forecaster, data: MarketData, sessions: list[date]) -> dict[date, float]:
    want = np.isin(data.windows.sessions, np.array(sessions, dtype="datetime64[D]"))
    idx = np.nonzero(want)[0]
    p, _ = predict(fc.model, apply_norm(data.windows.take(idx), fc.norm))
    return {data.sessions[i]: float(q) for i, q in zip(idx, p, strict=True)}


def score_arms(labels: np.ndarray, preds: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """n, accuracy, Wilson interval, binomial p vs 50% and McNemar p against every other arm."""
    y = labels.astype(bool)
    correct = {k: (p > 0.5) == y for k, p in preds.items()}
    out: dict[str, dict[str, Any]] = {}
    for k, c in correct.items():
        n, hits = int(c.size), int(c.sum())
        lo, hi = wilson_interval(hits, n)
        out[k] = {
            "n": n,
            "accuracy": hits / n if n else float("nan"),
            "ci_low": lo,
            "ci_high": hi,
            "p_value": binomial_p_value(hits, n),
            "mcnemar_p": {o: mcnemar_p_value(c, c2) for o, c2 in correct.items() if o != k},
        }
    return out


def run_replay(store: Path, cfg: QuantConfig, o: ReplayOptions) -> dict[str, Any]:
    """Run the replay and write ``replay.json``, ``replay.md`` and ``predictions.parquet``.

    The store is locked only while its bars are copied; the replay itself runs on the copy.
    """
    t_all = time.perf_counter()
    o.out.mkdir(parents=True, exist_ok=True)
    rcfg = _replay_config(cfg, o)
    # The from-scratch fits run before the first run_daily sets these: without them the first
    # fit ran on every core (oversubscribed on a shared box) and paid a one-off import.
    torch.set_num_threads(cfg.pipeline.threads)
    warm_up_torch()
    with StoreLock(store, f"replay copy to {o.out}"):
        src = open_store(store)
        try:
            con = working_copy(src, o.out / "replay_store.duckdb")
        finally:
            src.close()
    source = resolve_source(con, o.symbol, "1d", cfg.store.source_priority)
    bars = daily_bars(con, o.symbol, start=o.start, end=o.end, source=source)
    sessions: list[date] = bars["session"].to_list()
    if len(sessions) < 2:
        raise FeatureError(f"fewer than two {o.symbol} sessions in [{o.start}, {o.end}]")
    frozen_id = _bootstrap(con, rcfg, o)
    t_loop = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for i, d in enumerate(sessions):
        r = run_daily(con, rcfg, d, symbol=o.symbol, budget_s=o.budget_s, ingest=False)
        secs = {k: v.get("seconds", 0.0) for k, v in r.steps.items()}
        ft = r.steps.get("finetune", {}).get("detail", {})
        runs.append({"date": d, "status": r.status, "seconds": secs, "finetune": ft})
        if r.status != "done":
            log.warning("replay %s: %s (%s)", d, r.status, r.error)
        if i % 10 == 0:
            log.info("replay %d/%d %s %.0fs", i + 1, len(sessions), d, time.perf_counter() - t_loop)
    loop_s = time.perf_counter() - t_loop
    t_arms = time.perf_counter()
    # Scoring only: labels of sessions up to D2 may settle after D2 (the next session's close).
    last = daily_bars(con, o.symbol, source=source)["session"].max()
    assert isinstance(last, date)
    full = _market(con, rcfg, o.symbol, last)
    labelled = [s for s in sessions if s in set(full.sessions)]
    frozen_fc = registry.load_verified(registry.get_version(con, frozen_id), models_dir(rcfg))
    frozen = _predict_on(frozen_fc, full, labelled)
    retrain = _retrain_predictions(con, rcfg, o, labelled, full)
    continual = {
        s.decision_session: s.p_up for s in signals_between(con, o.symbol, all_versions=False)
    }
    idx = np.nonzero(np.isin(full.windows.sessions, np.array(labelled, dtype="datetime64[D]")))[0]
    pers = dict(
        zip([full.sessions[i] for i in idx], persistence(full.windows.take(idx)), strict=True)
    )
    common = [s for s in labelled if s in continual and s in frozen and s in retrain]
    lab = dict(zip(full.sessions, full.labels.tolist(), strict=True))
    preds = {
        "continual": np.array([continual[s] for s in common]),
        "frozen": np.array([frozen[s] for s in common]),
        "retrain_60": np.array([retrain[s] for s in common]),
        "persistence": np.array([pers[s] for s in common]),
        "always_up": np.ones(len(common)),
    }
    labels = np.array([lab[s] for s in common])
    doc = _document(o, rcfg, runs, score_arms(labels, preds), loop_s, time.perf_counter() - t_arms)
    doc["promotions"] = sum(h["action"] == "promote" for h in registry.champion_history(con))
    doc["sessions_scored"] = [str(common[0]), str(common[-1])] if common else []
    doc["total_seconds"] = round(time.perf_counter() - t_all, 1)
    frame = pl.DataFrame({"session": common, "label": labels, **preds})
    frame.write_parquet(o.out / "predictions.parquet")
    (o.out / "replay.json").write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    (o.out / "replay.md").write_text(markdown(doc), encoding="utf-8")
    con.close()
    return doc


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
        "budget_s": o.budget_s,
        "init_budget_s": o.init_budget_s,
        "created_at": datetime.now().astimezone().isoformat(),
        "days_run": len(runs),
        "days_failed": sum(r["status"] != "done" for r in runs),
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


def markdown(doc: dict[str, Any]) -> str:
    """The comparison table and the performance figures as Markdown."""
    m = doc["models"]
    lines = [
        f"# Replay {doc['symbol']} {doc['from']} .. {doc['to']} (budget {doc['budget_s']} s/day)",
        "",
        "| model | n | accuracy | 95% CI | p vs 50% | "
        + " | ".join(f"McNemar vs {a}" for a in m)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(m),
    ]
    for k, r in m.items():
        mc = " | ".join("-" if o == k else f"{r['mcnemar_p'][o]:.3f}" for o in m)
        lines.append(
            f"| {k} | {r['n']} | {100 * r['accuracy']:.1f}% | "
            f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] | {r['p_value']:.3f} | {mc} |"
        )
    perf = (
        "budget_overshoot_max_s",
        "budget_overshoot_median_s",
        "sessions_per_minute",
        "finetune_samples_per_s_median",
        "pipeline_s_per_day_excl_finetune_median",
        "days_run",
        "days_failed",
        "promotions",
        "total_seconds",
    )
    lines += ["", *(f"- {k}: {doc.get(k)}" for k in perf)]
    return "\n".join(lines) + "\n"
