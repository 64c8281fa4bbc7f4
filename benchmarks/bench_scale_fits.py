"""The executor half of ``python -m benchmarks scale``: the same seeded fits, local vs ray.

Workload: the walk-forward when ``models.walkforward.walk_forward`` takes ``executor=``
(fused model and LSTM from 2024-09-01, one block, 2 seeds each, predictions compared frame
for frame); otherwise ``fits`` independent seeded fits (fused model
and LSTM alternating, the default model sizes) on windows of a seeded synthetic market, each
returning its P(up) on every window (compared array for array).  ``local`` runs them one after
another on one torch thread (today's path), ``process`` and ``ray`` two at a time with one
torch thread each.  Each executor's first run includes starting its workers (each imports
torch); then ``rounds`` warm runs (what every later block of a walk-forward costs) go round the
executors in turn, so that on a shared machine each sees the same background load, and the
median warm run is reported.  Speed-ups compare first with first and warm with warm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import torch

from feeds.resample import resample_intraday
from feeds.synthetic import synthetic_market
from models.config import ForecastConfig
from models.executor import Executor, LocalExecutor, ProcessExecutor
from models.factory import build, model_config
from models.features import Windows, build_windows
from models.labels import next_direction
from models.normalise import apply_norm, fit_norm
from models.train import fit, predict


@dataclass(frozen=True)
class FitInputs:
    windows: Windows  # normalised
    labels: np.ndarray
    cfg: ForecastConfig


@dataclass(frozen=True)
class Fit:
    model: str
    seed: int


def fit_one(shared: FitInputs, task: Fit) -> tuple[np.ndarray, int]:
    """One seeded fit; P(up) on every window and the epochs run."""
    c = shared.cfg
    m = build(model_config(task.model, c.features, c.model), seed=task.seed)
    r = fit(m, shared.windows, shared.labels, c.train.model_copy(update={"seed": task.seed}))
    return predict(m, shared.windows)[0], r.epochs


def _market(max_epochs: int) -> tuple[Windows, pl.DataFrame, ForecastConfig]:
    m = synthetic_market(date(2020, 1, 1), date(2024, 12, 31), seed=3, minute_sessions=400)
    cfg = ForecastConfig()
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_epochs": max_epochs})})
    w = build_windows(m.daily, resample_intraday(m.minute, 5), cfg.features)
    return w, next_direction(m.daily), cfg


def fit_inputs(max_epochs: int) -> FitInputs:
    w, labels, cfg = _market(max_epochs)
    lab = pl.DataFrame({"session": w.sessions.astype("datetime64[D]")}).join(
        labels, on="session", how="inner", maintain_order="left"
    )
    w = w.take(np.nonzero(np.isin(w.sessions, lab.get_column("session").to_numpy()))[0])
    y = lab.get_column("label").to_numpy().astype(np.int64)
    return FitInputs(apply_norm(w, fit_norm(w)), y, cfg)


def _ray(workers: int) -> Executor:
    from models.executor_ray import RayExecutor

    return RayExecutor(workers=workers, object_store_memory=512 * 2**20)


def executor_part(fits: int, max_epochs: int, rounds: int = 3) -> dict[str, Any]:
    from benchmarks.bench_scale import walk_forward_takes_executor

    wf = walk_forward_takes_executor()
    if wf:
        run, same, workload = _walk_forward_workload(max_epochs)
    else:
        shared = fit_inputs(max_epochs)
        tasks = [Fit("fused" if i % 2 == 0 else "lstm", i) for i in range(fits)]

        def run(ex: Executor) -> Any:
            return ex.map(fit_one, tasks, shared=shared)

        def same(a: Any, b: Any) -> bool:
            return all(
                np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b, strict=True)
            )

        workload = f"{fits} independent seeded fits (fused/lstm), {len(shared.windows)} windows"
    makers: dict[str, Callable[[], Executor]] = {
        "local": LocalExecutor,
        "process": lambda: ProcessExecutor(2),
        "ray": lambda: _ray(2),
    }
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: dict[str, Any] = {}
    executors: dict[str, Executor] = {}
    reference: Any = None
    for name, make in makers.items():  # start-up and the first (cold) run, one at a time
        t0 = time.perf_counter()
        executors[name] = make()
        t1 = time.perf_counter()
        out = run(executors[name])
        t2 = time.perf_counter()
        reference = out if reference is None else reference
        rows[name] = {"start_s": t1 - t0, "run_s": t2 - t1, "warm_runs_s": []}
        rows[name]["identical_to_local"] = bool(same(out, reference))
        print(f"  {name}: start {t1 - t0:.1f}s, first run {t2 - t1:.1f}s")
    for _ in range(rounds):  # warm runs in rotation, so each executor sees the same load
        for name, ex in executors.items():
            t0 = time.perf_counter()
            out = run(ex)
            rows[name]["warm_runs_s"].append(time.perf_counter() - t0)
            rows[name]["identical_to_local"] &= bool(same(out, reference))
    for ex in executors.values():
        ex.close()
    torch.set_num_threads(before)
    for r in rows.values():
        r["warm_run_s"] = float(np.median(r["warm_runs_s"]))
    base, warm_base = rows["local"]["run_s"], rows["local"]["warm_run_s"]
    for r in rows.values():
        r["speedup_vs_local"] = base / r["run_s"]
        r["warm_speedup_vs_local"] = warm_base / r["warm_run_s"]
    return {"workload": workload, "walk_forward": wf, "workers": 2, "rounds": rounds, "rows": rows}


def _walk_forward_workload(max_epochs: int) -> tuple[Any, Any, str]:
    """The walk-forward of the fused model and the LSTM from 2024-09 (one block), 2 seeds each."""
    from models.walkforward import walk_forward

    w, labels, cfg = _market(max_epochs)
    ev = cfg.evaluation.model_copy(update={"seeds": 2, "candidates": 1})
    cfg = cfg.model_copy(update={"evaluation": ev})
    start = date(2024, 9, 1)

    def run(ex: Executor) -> Any:
        r = walk_forward(
            w,
            labels,
            cfg,
            start=start,
            models=("fused", "lstm"),
            retrain_every=120,
            max_epochs=max_epochs,
            executor=ex,
        )
        return r.predictions

    def same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
        return a.equals(b)

    return (
        run,
        same,
        (
            f"walk-forward fused+lstm from {start}, retrain every 120 sessions, 2 seeds x 1 "
            f"candidates, {max_epochs} epochs max"
        ),
    )


def print_executors(r: dict[str, Any]) -> None:
    print(
        f"executors ({r['workload']}; {r['workers']} workers; median of {r['rounds']} warm runs):"
    )
    print(
        f"{'executor':<18} {'start s':>8} {'run s':>8} {'speed-up':>9} {'warm run s':>11} "
        f"{'speed-up':>9} {'same as local':>14}"
    )
    for name, x in r["rows"].items():
        warm = f"{x['warm_run_s']:>11.1f} {x['warm_speedup_vs_local']:>8.2f}x"
        print(
            f"{name:<18} {x['start_s']:>8.1f} {x['run_s']:>8.1f} {x['speedup_vs_local']:>8.2f}x "
            f"{warm} {x['identical_to_local']!s:>14}"
        )
