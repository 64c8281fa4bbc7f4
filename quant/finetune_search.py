"""Choosing the fine-tune method on inner validation: a small declared search space, scored on a
span that ends before the replay's test span starts.

For each candidate (learning rate, recent window, replay sample of older sessions, L2-SP anchor,
step budget) a champion lineage is run at a ``every``-session cadence over [FROM, TO]: on each run
date D the candidate fine-tunes its own champion with the production code (``quant.finetune``),
the production gate (``quant.gate``) decides on the gate window, and the champion after that
decision forecasts the decision sessions D .. D+every-1, which no model of that lineage trained on
or was selected by.  All lineages start from one first champion (trained from scratch on data to
FROM, gate window held out) and are scored on the same sessions as that champion left frozen.
The rule is the promotion bar the continual-learning issue sets for the production policy,
applied here on inner validation: a candidate is eligible when its accuracy is at most
``MAX_ACCURACY_DROP`` below never updating (``frozen``) and its log loss is not above frozen's;
the chosen policy is the eligible candidate with the lowest log loss, or ``frozen`` when none is
eligible.  The test span is never read.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

import duckdb
import numpy as np

from feeds.read import daily_bars, resolve_source
from models.arms import score_arms
from models.forecaster import Forecaster
from quant import gate
from quant.config import QuantConfig
from quant.finetune import finetune, finetune_indices, gate_split, train_scratch
from quant.market_data import MarketData
from quant.replay_arms import predict_on
from quant.replay_report import paired_bootstrap

log = logging.getLogger(__name__)

# One factor at a time around the base (the defaults before the search: 60 steps, lr 1e-3,
# recent 250, replay 250, no anchor), then a second stage around the first stage's winner.
SPACE: dict[str, dict[str, float | int]] = {
    "base": {},
    "lr=3e-4": {"lr": 3e-4},
    "lr=3e-3": {"lr": 3e-3},
    "recent=120": {"recent_sessions": 120},
    "recent=500": {"recent_sessions": 500},
    "replay=0": {"replay_sample": 0},
    "replay=750": {"replay_sample": 750},
    "anchor=1e-3": {"anchor": 1e-3},
    "anchor=1e-2": {"anchor": 1e-2},
    "anchor=1e-1": {"anchor": 1e-1},
    "steps=12": {"max_steps": 12},
    "steps=4": {"max_steps": 4},
    "steps=12+anchor=1e-1": {"max_steps": 12, "anchor": 1e-1},
    "steps=12+lr=3e-4": {"max_steps": 12, "lr": 3e-4},
    # Stage 3, declared before it ran, for the seed-ensemble forecaster (5 members x 3 candidates,
    # bounded residuals): the step budget around the chosen 4, and the two gentlest updates.
    "steps=2": {"max_steps": 2},
    "steps=8": {"max_steps": 8},
    "steps=4+anchor=1e-1": {"max_steps": 4, "anchor": 1e-1},
    "steps=4+lr=3e-4": {"max_steps": 4, "lr": 3e-4},
}

# Leaving the champion alone is a policy too: a search in which no fine-tune meets the bar against
# never updating says so (``chosen == "frozen"``).
NO_UPDATE = "frozen"
MAX_ACCURACY_DROP = 0.005  # 0.5 accuracy points, the bar of the continual-learning issue


def choose(scores: dict[str, dict[str, Any]], candidates: tuple[str, ...]) -> str:
    """The eligible candidate (accuracy >= frozen's - 0.5 points, log loss <= frozen's) with the
    lowest log loss; ``frozen`` when none is eligible.  Ties go to the earlier name."""
    base = scores[NO_UPDATE]
    eligible = [
        c
        for c in candidates
        if scores[c]["accuracy"] >= base["accuracy"] - MAX_ACCURACY_DROP - 1e-12
        and scores[c]["log_loss"] <= base["log_loss"]
    ]
    return min(eligible, key=lambda c: scores[c]["log_loss"]) if eligible else NO_UPDATE


def search(
    con: duckdb.DuckDBPyConnection,
    cfg: QuantConfig,
    symbol: str,
    start: date,
    end: date,
    *,
    every: int = 5,
    candidates: tuple[str, ...] = tuple(SPACE),
) -> dict[str, Any]:
    """Score every candidate's lineage and the frozen first champion on [start, end]."""
    t0 = time.perf_counter()
    unknown = sorted(set(candidates) - set(SPACE))
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; known: {tuple(SPACE)}")
    src = resolve_source(con, symbol, "1d", cfg.store.source_priority)
    sessions: list[date] = daily_bars(con, symbol, start=start, end=end, source=src)[
        "session"
    ].to_list()
    last = daily_bars(con, symbol, source=src)["session"].max()
    assert isinstance(last, date)
    full = MarketData.load(con, cfg, last, symbol=symbol)
    sessions = [s for s in sessions if s in set(full.sessions)]
    first_data = MarketData.load(con, cfg, sessions[0], symbol=symbol)
    pool, _ = gate_split(len(first_data.windows), cfg.pipeline.gate.window_sessions)
    first = train_scratch(first_data, pool, cfg.forecast, cfg.pipeline.initial.model).forecaster
    champs: dict[str, Forecaster] = dict.fromkeys(candidates, first)
    promoted = dict.fromkeys(candidates, 0)
    series: dict[str, dict[date, float]] = {c: {} for c in candidates}
    for b in range(0, len(sessions), every):
        d, block = sessions[b], sessions[b : b + every]
        data = MarketData.load(con, cfg, d, symbol=symbol)
        pool, gidx = gate_split(len(data.windows), cfg.pipeline.gate.window_sessions)
        for c in candidates:
            s = cfg.pipeline.finetune.model_copy(update={**SPACE[c], "calibrate_steps": False})
            recent, replay = finetune_indices(pool, s, d)
            idx = np.sort(np.concatenate([replay, recent]))
            out = finetune(champs[c], data, idx, cfg.forecast, s, budget_s=s.budget_s)
            ch = out.forecaster
            decision = gate.decide(
                gate.score(ch, data, gidx),
                gate.score(champs[c], data, gidx),
                cfg.pipeline.gate,
                unchanged=cfg.pipeline.gate.skip_unchanged and out.changed_members == 0,
            )
            if decision.promote:
                champs[c], promoted[c] = ch, promoted[c] + 1
            series[c] |= predict_on(champs[c], full, block)
        log.info(
            "search %s: %d/%d sessions, %.0fs",
            d,
            b + len(block),
            len(sessions),
            time.perf_counter() - t0,
        )
    frozen = predict_on(first, full, sessions)
    lab = full.label_by_session
    labels = np.array([lab[s] for s in sessions], dtype=np.int64)
    preds = {NO_UPDATE: np.array([frozen[s] for s in sessions])}
    preds |= {c: np.array([series[c][s] for s in sessions]) for c in candidates}
    scores = score_arms(labels, preds)
    for c in candidates:
        scores[c]["promotions"] = promoted[c]
        scores[c]["vs_frozen"] = paired_bootstrap(labels, preds[c], preds[NO_UPDATE])
    chosen = choose(scores, candidates)
    return {
        "symbol": symbol,
        "from": str(sessions[0]),
        "to": str(sessions[-1]),
        "every": every,
        "run_dates": len(range(0, len(sessions), every)),
        "space": {c: SPACE[c] for c in candidates},
        "base": cfg.pipeline.finetune.model_dump(),
        "scores": scores,
        "chosen": chosen,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def markdown(doc: dict[str, Any]) -> str:
    """The candidates' table, lowest log loss first."""
    rows = sorted(doc["scores"].items(), key=lambda kv: kv[1]["log_loss"])
    lines = [
        f"# Fine-tune search {doc['symbol']} {doc['from']} .. {doc['to']} "
        f"(a run every {doc['every']} sessions, {doc['run_dates']} run dates); "
        f"chosen: {doc['chosen']}",
        "",
        "| candidate | n | accuracy | log loss | promotions | log-loss diff vs frozen [95%] |",
        "|---|---|---|---|---|---|",
    ]
    for c, r in rows:
        vs = r.get("vs_frozen")
        diff = (
            f"{vs['log_loss_diff']:+.4f} [{vs['log_loss_ci_low']:+.4f}, "
            f"{vs['log_loss_ci_high']:+.4f}]"
            if vs
            else "-"
        )
        lines.append(
            f"| {c} | {r['n']} | {100 * r['accuracy']:.1f}% | {r['log_loss']:.4f} | "
            f"{r.get('promotions', '-')} | {diff} |"
        )
    return "\n".join(lines) + "\n"
