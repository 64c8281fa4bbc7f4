"""Pipeline benchmark: fine-tune budget adherence, samples/s, and the daily loop's own cost.

``python -m benchmarks.bench_pipeline [--budgets 5,20] [--days 10] [--day-budget 1]``

On the default synthetic market (2015-2025, daily bars only) and the default model: a first
model is trained, then one run per budget in ``--budgets`` measures the fine-tune step against
its budget (overshoot = step seconds - budget, preparation and saving included), then ``--days``
consecutive runs at ``--day-budget`` give sessions per minute and the time per day spent outside
fine-tuning (ingest check, gate, signal, backtest, report).  One torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch

from feeds.calendar import trading_days
from feeds.ingest import ingest_synthetic
from feeds.store import open_store
from quant.config import QuantConfig
from quant.pipeline import run_daily

START, END = date(2015, 1, 5), date(2025, 5, 16)


def _config(root: Path) -> QuantConfig:
    return QuantConfig.model_validate(
        {
            "store": {"path": str(root / "q.duckdb")},
            "data": {
                "symbol": "SYN300.SIM",  # the synthetic market under its own symbol
                "synthetic_minute_sessions": 0,
                "real_data_dir": str(root / "none"),
            },
            "pipeline": {
                "reports_dir": str(root / "reports"),
                "ingest_synthetic": False,
                # train until the wall-clock cap: no step budget, no calibration, no early stop
                "finetune": {
                    "patience": 10**6,
                    "max_epochs": 10**6,
                    "max_steps": 10**9,
                    "calibrate_steps": False,
                },
            },
        }
    )


def run(budgets: list[float], days: int, day_budget: float) -> dict[str, Any]:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(Path(tmp))
        con = open_store(cfg.store.path)
        ingest_synthetic(con, start=START, end=END, seed=7, minute_sessions=0)
        sessions = trading_days(date(2025, 1, 2), END)
        run_daily(con, cfg, sessions[0], ingest=False)  # first model, not measured
        rows = []
        for b, d in zip(budgets, sessions[1:], strict=False):
            ft = run_daily(con, cfg, d, budget_s=b, ingest=False).steps["finetune"]["detail"]
            rows.append(
                {
                    "budget_s": b,
                    "step_s": ft["seconds"],
                    "overshoot_s": ft["overshoot_s"],
                    "overshoot_pct": 100 * ft["overshoot_s"] / b,
                    "samples_per_s": ft["samples_per_s"],
                }
            )
        loop = sessions[1 + len(budgets) : 1 + len(budgets) + days]
        t0 = time.perf_counter()
        other, over = [], []
        for d in loop:
            r = run_daily(con, cfg, d, budget_s=day_budget, ingest=False)
            other.append(sum(v["seconds"] for k, v in r.steps.items() if k != "finetune"))
            over.append(r.steps["finetune"]["detail"]["overshoot_s"])
        loop_s = time.perf_counter() - t0
        con.close()
    return {
        "finetune": rows,
        "days": len(loop),
        "day_budget_s": day_budget,
        "sessions_per_minute": 60 * len(loop) / loop_s,
        "overshoot_max_s": max(over),
        "overshoot_median_s": statistics.median(over),
        "excl_finetune_median_s": statistics.median(other),
    }


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_pipeline")
    ap.add_argument("--budgets", default="5,20", help="fine-tune budgets to measure, seconds")
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--day-budget", type=float, default=1.0)
    a = ap.parse_args(argv)
    res = run([float(x) for x in a.budgets.split(",")], a.days, a.day_budget)
    head = ("budget s", "step s", "overshoot s", "overshoot %", "samples/s")
    print(f"{head[0]:>9} {head[1]:>8} {head[2]:>12} {head[3]:>12} {head[4]:>10}")
    for r in res["finetune"]:
        print(
            f"{r['budget_s']:>9.1f} {r['step_s']:>8.2f} {r['overshoot_s']:>12.3f} "
            f"{r['overshoot_pct']:>12.1f} {r['samples_per_s']:>10.0f}"
        )
    print(
        f"{res['days']} daily runs at {res['day_budget_s']} s: "
        f"{res['sessions_per_minute']:.1f} sessions/min, "
        f"overshoot max {res['overshoot_max_s']:.3f} s "
        f"median {res['overshoot_median_s']:.3f} s, time per day excluding fine-tune "
        f"{res['excl_finetune_median_s']:.2f} s (median)"
    )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
