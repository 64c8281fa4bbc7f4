"""Walk-forward evaluation: expanding training window, retrain every N sessions, test after it.

At the first session t0 of each test block every model is refitted on the samples whose label
is already settled at t0's close (``label_session <= t0``), with normalisation statistics fitted
on those samples only; they then forecast the sessions t0 .. t0+N-1.  Inside the training window
the hyperparameters are chosen on its inner validation tail (``models.selection``); the test
block is never an input of a choice.  Every neural model is a seed ensemble of K fits that run
through one executor (in process, on worker processes, or on Ray); the logistic regression is
selected the same way and is also the fused model's linear path.  Every model sees the same
windows and splits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import torch

from models.baselines import always_up, majority, persistence
from models.config import ForecastConfig
from models.ensemble import EnsembleForecaster, fit_temperature
from models.executor import Executor, LocalExecutor
from models.export import quantize_int8
from models.factory import ABLATIONS, TORCH_MODELS, build, model_config
from models.features import Windows
from models.forecaster import Forecaster
from models.importance import permutation_importance
from models.labels import labelled
from models.metrics import log_loss
from models.normalise import apply_norm, fit_norm
from models.selection import (
    Candidate,
    FitOutput,
    FitTask,
    candidates,
    inner_split,
    member_val_probabilities,
    run_fit,
    select_logistic,
    train_view,
)
from models.sizes import enough_to_train
from models.train import predict, tensors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalkForwardResult:
    predictions: pl.DataFrame  # session, model, p_up, label, gate, has_intra
    int8: pl.DataFrame  # session, p_fp32, p_int8, label (the fused model, quantised per block)
    fits: list[dict[str, object]]  # one record per (block, model, candidate, seed)
    seed_predictions: pl.DataFrame = field(default_factory=pl.DataFrame)  # + seed column
    selection: list[dict[str, Any]] = field(default_factory=list)  # chosen values per block
    final: dict[str, Forecaster] = field(default_factory=dict)  # last block's models
    importance: dict[str, float] = field(default_factory=dict)  # fused, last block, validation
    seconds: float = 0.0


def _frame(name: str, w: Windows, y: np.ndarray, p: np.ndarray, g: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "session": w.sessions.astype("datetime64[D]"),
            "model": [name] * len(w),
            "p_up": p.astype(np.float64),
            "label": y.astype(np.int8),
            "gate": g.astype(np.float64),
            "has_intra": w.has_intra,
        }
    )


@dataclass
class _Block:
    """Inputs of one block, normalised with the block's training statistics."""

    t0: str
    tr: Windows
    ytr: np.ndarray
    te: Windows
    yte: np.ndarray
    raw_te: Windows


def _ensemble(
    name: str, outs: list[FitOutput], task: FitTask, b: _Block, cfg: ForecastConfig
) -> tuple[EnsembleForecaster, float]:
    """The K fits of one candidate as a calibrated ensemble, and its inner-validation loss."""
    lags = task.linear[0].size // b.tr.x_daily.shape[-1] if task.linear is not None else 2
    mc = model_config(name, cfg.features, task.candidate.model, linear_lags=lags)
    members = []
    for o in outs:
        m = build(mc)
        m.load_state_dict(o.state)
        members.append(m.eval())
    ens = EnsembleForecaster.of(members)
    pv, yv = member_val_probabilities(members, b.tr, b.ytr, name, task.candidate.train)
    p = pv.mean(0)
    if cfg.evaluation.calibration:
        ens.temperature.fill_(fit_temperature(p, yv))
    return ens, log_loss(yv, p)


class _Chains:
    """Warm-start state per (model, candidate, seed) across blocks."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.states: dict[tuple[str, int, int], dict[str, torch.Tensor]] = {}

    def get(self, key: tuple[str, int, int]) -> dict[str, torch.Tensor] | None:
        return self.states.get(key) if self.enabled else None

    def put(self, key: tuple[str, int, int], state: dict[str, torch.Tensor]) -> None:
        self.states[key] = state


def _tasks(
    name: str,
    cands: list[Candidate],
    b: _Block,
    cfg: ForecastConfig,
    chains: _Chains,
    linear: tuple[np.ndarray, float] | None,
    max_epochs: int | None,
) -> list[FitTask]:
    out = []
    for c in cands:
        for k in range(cfg.evaluation.seeds):
            init = chains.get((name, c.index, k))
            epochs = cfg.evaluation.warm_epochs if init is not None else max_epochs
            if init is not None and max_epochs is not None:
                epochs = min(cfg.evaluation.warm_epochs, max_epochs)
            out.append(FitTask(b.t0, name, c, cfg.train.seed + k, epochs, init, linear))
    return out


def train_block(
    models: tuple[str, ...],
    b: _Block,
    cfg: ForecastConfig,
    executor: Executor,
    chains: _Chains,
    linear: tuple[np.ndarray, float] | None,
    max_epochs: int | None,
) -> tuple[dict[str, EnsembleForecaster], dict[str, Any], list[dict[str, Any]]]:
    """Select and fit every torch model of ``models`` on one block's training window.

    The fused model and the LSTM each choose among their candidates (K seeds per candidate);
    the ablations reuse the fused model's chosen candidate, so they differ from it only in the
    part they ablate.
    """
    families = [m for m in ("fused", "lstm") if m in models]
    if any(m in models for m in ABLATIONS) and "fused" not in families:
        families.insert(0, "fused")  # the ablations need the fused model's choice
    cands = {f: candidates(cfg, f) for f in families}
    shared = (b.tr, b.ytr, cfg)
    tasks = [t for f in families for t in _tasks(f, cands[f], b, cfg, chains, linear, max_epochs)]
    outs = executor.map(run_fit, tasks, shared=shared)
    chosen: dict[str, EnsembleForecaster] = {}
    selection: dict[str, Any] = {}
    records = [o.record for o in outs]
    for f in families:
        scored = []
        for c in cands[f]:
            idx = [i for i, t in enumerate(tasks) if t.model == f and t.candidate is c]
            group = [outs[i] for i in idx]
            ens, val = _ensemble(f, group, tasks[idx[0]], b, cfg)
            scored.append((val, c, ens))
            for i in idx:
                chains.put((f, c.index, tasks[i].seed - cfg.train.seed), outs[i].state)
        val, best, ens = min(scored, key=lambda s: s[0])
        chosen[f] = ens
        selection[f] = {
            "candidate": best.index,
            **best.params(f),
            "val_log_loss": round(val, 6),
            "candidates": [
                {"candidate": c.index, "val_log_loss": round(v, 6)} for v, c, _ in scored
            ],
            "temperature": float(ens.temperature.item()),
        }
    abl = [m for m in ABLATIONS if m in models]
    if abl:
        best = next(c for c in cands["fused"] if c.index == selection["fused"]["candidate"])
        tasks2 = [t for m in abl for t in _tasks(m, [best], b, cfg, chains, linear, max_epochs)]
        intra = "intraday_only" in abl
        if intra and not enough_to_train(len(train_view("intraday_only", b.tr, b.ytr)[0])):
            tasks2 = [t for t in tasks2 if t.model != "intraday_only"]
        outs2 = executor.map(run_fit, tasks2, shared=shared)
        records += [o.record for o in outs2]
        for m in abl:
            idx = [i for i, t in enumerate(tasks2) if t.model == m]
            if not idx:
                continue
            for i in idx:
                chains.put((m, best.index, tasks2[i].seed - cfg.train.seed), outs2[i].state)
            chosen[m], _ = _ensemble(m, [outs2[i] for i in idx], tasks2[idx[0]], b, cfg)
    return {m: e for m, e in chosen.items() if m in models}, selection, records


def _members(ens: EnsembleForecaster, w: Windows) -> np.ndarray:
    return ens.member_probabilities(*tensors(w)).double().numpy()


def walk_forward(
    windows: Windows,
    labels: pl.DataFrame,
    cfg: ForecastConfig,
    *,
    start: date,
    end: date | None = None,
    models: tuple[str, ...],
    retrain_every: int | None = None,
    max_epochs: int | None = None,
    executor: Executor | None = None,
) -> WalkForwardResult:
    """Forecast every labelled session in ``[start, end]`` with each of ``models``.

    ``windows`` are the raw (un-normalised) inputs of all sessions; ``labels`` comes from
    ``models.labels.next_direction`` (columns session, label, label_session).
    """
    t_start = time.perf_counter()
    ex = executor or LocalExecutor()
    w, y, settled = labelled(windows, labels)
    sess = w.sessions.astype("datetime64[D]")
    lo = np.datetime64(start, "D")
    hi = np.datetime64(end, "D") if end is not None else sess.max()
    test_idx = np.nonzero((sess >= lo) & (sess <= hi))[0]
    if test_idx.size == 0:
        raise ValueError(f"no labelled sessions with full windows in [{start}, {end}]")
    every = retrain_every or cfg.evaluation.retrain_every
    torch_models = tuple(m for m in models if m in TORCH_MODELS)
    unknown = set(models) - set(TORCH_MODELS) - {"logistic", "persistence", "always_up", "majority"}
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}")

    frames: list[pl.DataFrame] = []
    seed_frames: list[pl.DataFrame] = []
    int8_frames: list[pl.DataFrame] = []
    fits: list[dict[str, object]] = []
    selection: list[dict[str, Any]] = []
    final: dict[str, Forecaster] = {}
    importance: dict[str, float] = {}
    chains = _Chains(cfg.evaluation.warm_start)
    blocks = [test_idx[i : i + every] for i in range(0, test_idx.size, every)]
    for n_block, block in enumerate(blocks):
        t0 = sess[block[0]]
        train_idx = np.nonzero(settled <= t0)[0]
        if not enough_to_train(train_idx.size):
            log.warning("block %s: only %d training samples, skipped", t0, train_idx.size)
            continue
        raw_tr = w.take(train_idx)
        norm = fit_norm(raw_tr)
        b = _Block(
            str(t0),
            apply_norm(raw_tr, norm),
            y[train_idx],
            apply_norm(w.take(block), norm),
            y[block],
            w.take(block),
        )
        trained_through = str(sess[train_idx[-1]])
        lm, lsel = select_logistic(raw_tr, b.ytr, norm, cfg)
        record: dict[str, Any] = {"block": b.t0, "n_train": int(train_idx.size), "logistic": lsel}
        zeros = np.zeros(len(b.te))
        if "logistic" in models:
            frames.append(_frame("logistic", b.te, b.yte, lm.predict(b.raw_te), zeros))
        if "always_up" in models:
            frames.append(_frame("always_up", b.te, b.yte, always_up(b.te), zeros))
        if "majority" in models:
            frames.append(_frame("majority", b.te, b.yte, majority(b.ytr, b.te), zeros))
        if "persistence" in models:
            frames.append(_frame("persistence", b.te, b.yte, persistence(b.raw_te), zeros))
        if torch_models:
            ens, sel, recs = train_block(torch_models, b, cfg, ex, chains, lm.linear, max_epochs)
            record |= sel
            fits += recs
            for name, e in ens.items():
                te, yte = b.te, b.yte
                if name == "intraday_only":  # tested where intraday bars exist
                    te, yte = train_view(name, b.te, b.yte)
                    if len(te) == 0:
                        continue
                p, g = predict(e, te)
                frames.append(_frame(name, te, yte, p, g))
                per_seed = _members(e, te)
                for k, pk in enumerate(per_seed):
                    seed_frames.append(
                        _frame(name, te, yte, pk, g).with_columns(pl.lit(k).alias("seed"))
                    )
                final[name] = Forecaster(
                    e, cfg.features, norm, name, {"trained_through": trained_through}
                )
                if name == "fused":
                    q8, _ = predict(quantize_int8(e), te)
                    int8_frames.append(
                        pl.DataFrame(
                            {
                                "session": te.sessions.astype("datetime64[D]"),
                                "p_fp32": p,
                                "p_int8": q8,
                                "label": yte.astype(np.int8),
                            }
                        )
                    )
        if "fused" in final and n_block == len(blocks) - 1:
            vw, vy = train_view("fused", b.tr, b.ytr)
            vi = np.arange(inner_split(len(vw), cfg.train), len(vw))
            importance = permutation_importance(final["fused"].model, vw.take(vi), vy[vi])
        selection.append(record)
        log.info(
            "block %d/%d from %s: %d train, %d test sessions, %.0fs elapsed",
            n_block + 1,
            len(blocks),
            t0,
            train_idx.size,
            block.size,
            time.perf_counter() - t_start,
        )
    return WalkForwardResult(
        predictions=pl.concat(frames) if frames else pl.DataFrame(),
        int8=pl.concat(int8_frames) if int8_frames else pl.DataFrame(),
        fits=fits,
        seed_predictions=pl.concat(seed_frames) if seed_frames else pl.DataFrame(),
        selection=selection,
        final=final,
        importance=importance,
        seconds=time.perf_counter() - t_start,
    )


def fit_forecaster(
    raw: Windows,
    y: np.ndarray,
    cfg: ForecastConfig,
    name: str = "fused",
    *,
    executor: Executor | None = None,
    max_epochs: int | None = None,
) -> tuple[Forecaster, dict[str, Any]]:
    """One block's training on every sample of ``raw`` (chronological, labels ``y``): the same
    selection, ensemble and linear path as each walk-forward block; for the daily pipeline."""
    if name not in TORCH_MODELS:
        raise ValueError(f"{name!r} is not a torch model; expected one of {TORCH_MODELS}")
    norm = fit_norm(raw)
    tr = apply_norm(raw, norm)
    last = str(raw.sessions.max().astype("datetime64[D]"))
    lm, lsel = select_logistic(raw, y, norm, cfg)
    none = np.zeros(0, dtype=np.int64)
    b = _Block(last, tr, y, tr.take(none), y[none], raw.take(none))
    ex = executor or LocalExecutor()
    ens, sel, _ = train_block((name,), b, cfg, ex, _Chains(False), lm.linear, max_epochs)
    selection: dict[str, Any] = {"logistic": lsel, **sel}
    meta = {"trained_through": last, "selection": selection}
    return Forecaster(ens[name], cfg.features, norm, name, meta), selection
