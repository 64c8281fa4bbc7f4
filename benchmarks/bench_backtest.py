"""Sweep benchmark: 1,000 long/flat variants over 20 years of daily bars: kernel, engine, loop.

``python -m benchmarks backtest [--instrument if] [--oracle-variants 1000] [--fresh-jit]
[--json FILE]``

Variants: 10 thresholds x 10 cost levels x 10 execution lags.  Data: the real Wind CSI 300
daily bars when ``../shared/data/real`` is present, else the synthetic market over 2005-2024;
P(up) is seeded uniform noise (many orders: a hard case).

- sweep: what ``run_sweep`` runs: ``backtest.sweep.run_kernel`` (carry execution: the numba
  kernel of ``backtest.sweep_lanes``, parallel over blocks of variants that share a signal,
  vectorised over the block's lanes, targets and schedule built in the kernel, figure moments
  kept while the bars run) plus the trading figures; cold = first call (JIT
  compile or numba's on-disk cache; ``--fresh-jit`` points NUMBA_CACHE_DIR at an empty
  folder), warm = best of 5 runs, one before each fifth of the loop (so that kernel and loop
  share the machine's load), with their CPU time (all threads) beside the wall time;
- engine: the same sweep through the vectorbt engine (one ``Portfolio.from_orders`` call with
  the per-order cost fixed point), warm, best of 2;
- loop: ``backtest.oracle.run_oracle`` (a per-bar Python loop with the same rule and costs)
  over the same scheduled targets, one variant after another; it is given the schedule, so its
  time excludes signal-to-target work that the kernel time includes.  Its CPU time per 1,000
  variants over the kernel's is the load-robust speed-up (a kernel on two threads counts both).
- max_equity_diff: the largest |kernel - engine| session-close equity over every variant of the
  grid, as a fraction of capital (and the same against the loop on its variants).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.output import load_average, print_table, write_json

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
GRID_THRESHOLDS = tuple(np.round(np.linspace(0.40, 0.58, 10), 3))
GRID_COSTS = tuple(np.round(np.linspace(0.0, 4.5, 10), 2))
GRID_LAGS = tuple(range(1, 11))


def _bars() -> tuple[pl.DataFrame, str]:
    from feeds.store import open_store, transaction

    con = open_store(":memory:")
    if (REAL / "csi300_daily_wind_rlcsi300.csv").exists():
        from feeds.ingest import ingest_file

        ingest_file(con, REAL / "csi300_daily_wind_rlcsi300.csv")
        label, symbol = "real Wind CSI 300 daily bars", "000300.SH"
    else:
        from feeds.synthetic import synthetic_market
        from feeds.writer import write_bars

        m = synthetic_market(date(2005, 1, 4), date(2024, 12, 31), seed=7, minute_sessions=0)
        with transaction(con):
            write_bars(con, m.daily, file_sha256=None)
        label, symbol = "SYNTHETIC market (real data dir absent)", m.daily["symbol"][0]
    from feeds.read import daily_bars

    bars = daily_bars(con, symbol)
    con.close()
    return bars, label


def _best(fn: Callable[[], object], n: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return min(runs), runs


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks backtest")
    ap.add_argument("--instrument", default="if", choices=["if", "etf", "stock"])
    ap.add_argument("--oracle-variants", type=int, default=1000)
    ap.add_argument("--fresh-jit", action="store_true", help="compile numba kernels from scratch")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = ap.parse_args(argv)
    if args.fresh_jit:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cold-")

    t0 = time.perf_counter()
    from backtest.config import BacktestConfig, SignalRule, SweepGrid
    from backtest.inputs import bars_for_backtest, persistence_predictions
    from backtest.oracle import run_oracle_variant
    from backtest.signals import layout, schedule, target_positions
    from backtest.sweep import Variants, engine_sweep_equity, run_kernel, sweep_equity
    from backtest.trading import figures, performance

    import_s = time.perf_counter() - t0
    bars, label = _bars()
    preds = persistence_predictions(bars)
    rng = np.random.default_rng(20250516)
    p_up = rng.uniform(size=preds.height)
    cfg = BacktestConfig()
    profile = cfg.profile(args.instrument)
    rule = SignalRule()
    variants = Variants.grid(
        SweepGrid(thresholds=GRID_THRESHOLDS, cost_multipliers=GRID_COSTS, lags=GRID_LAGS)
    )
    span = bars_for_backtest(preds, bars, max(GRID_LAGS))
    sessions = span["session"].to_numpy()
    lay = layout(sessions, span["open"].to_numpy(), span["close"].to_numpy(), cfg.execution)
    signal_index = np.searchsorted(sessions, preds["session"].to_numpy())
    sweep_args = (p_up, signal_index, lay, profile, rule, variants)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def sweep() -> None:
        run = run_kernel(*sweep_args, init_cash=cfg.init_cash, want_equity=False)
        figures(run.moments, cfg.periods_per_year)

    def engine() -> None:
        out["engine"] = engine_sweep_equity(*sweep_args, init_cash=cfg.init_cash)
        performance(out["engine"][0], cfg.periods_per_year)

    cold, _ = _best(sweep, 1)
    engine()  # JIT or cache load of vectorbt's kernels, not timed
    engine_warm, engine_runs = _best(engine, 2)
    equity, orders = sweep_equity(*sweep_args, init_cash=cfg.init_cash)  # not timed
    engine_equity, engine_orders = out["engine"]
    max_diff = float(np.max(np.abs(equity - engine_equity))) / cfg.init_cash

    # the Python loop over the same scheduled targets, variant by variant, in 5 slices; one
    # warm kernel sweep before each slice, so both see the same load (the machine is shared)
    targets = target_positions(p_up, rule, long_above=variants.threshold)
    sched = schedule(
        targets, signal_index, lay, variants.lag, intraday=False, t_plus_one=profile.t_plus_one
    )
    n_loop = min(args.oracle_variants, len(variants))
    cols = np.linspace(0, len(variants) - 1, n_loop).astype(int)
    loop_equity: list[np.ndarray] = []
    warm_runs, warm_cpu, loop, loop_cpu = [], [], 0.0, 0.0
    for part in np.array_split(cols, 5):
        t0, c0 = time.perf_counter(), time.process_time()
        sweep()
        warm_runs.append(time.perf_counter() - t0)
        warm_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        loop_equity += [
            run_oracle_variant(
                lay, sched, profile, variants.cost_multiplier, c, init_cash=cfg.init_cash
            ).equity
            for c in part
        ]
        loop += time.perf_counter() - t0
        loop_cpu += time.process_time() - c0
    warm = min(warm_runs)
    loop_full = loop * len(variants) / n_loop
    loop_diff = max(
        float(np.max(np.abs(equity[:, c] - e[lay.session_end]))) / cfg.init_cash
        for c, e in zip(cols, loop_equity, strict=True)
    )
    assert np.array_equal(orders, engine_orders), "kernel and engine fill different orders"
    assert max_diff <= 1e-9, f"kernel equity differs from the engine by {max_diff:.2e} of capital"
    load = load_average()
    speedup = loop_full / warm
    loop_cpu_full = loop_cpu * len(variants) / n_loop
    speedup_cpu = loop_cpu_full / min(warm_cpu)
    rows = [
        ("data", f"{label}: {len(sessions)} sessions {sessions[0]} .. {sessions[-1]}"),
        (
            "variants",
            f"{len(variants)} = 10 thresholds x 10 cost levels x 10 lags, "
            f"{args.instrument} costs, long/flat",
        ),
        ("orders simulated", f"{int(orders.sum()):,}"),
        ("machine", load),
        ("imports (vectorbt, numba)", f"{import_s:.2f} s"),
        (
            "kernel sweep, cold (first call: JIT" + (")" if args.fresh_jit else " or cache)"),
            f"{cold:.2f} s",
        ),
        (
            "kernel sweep, warm (best of 5, one per loop slice)",
            f"{warm:.3f} s  (runs: " + ", ".join(f"{w:.3f}" for w in warm_runs) + ")",
        ),
        ("kernel sweep, warm, CPU time (all threads)", f"{min(warm_cpu):.3f} s"),
        (
            "vectorbt engine sweep, warm (best of 2)",
            f"{engine_warm:.3f} s  (runs: " + ", ".join(f"{w:.3f}" for w in engine_runs) + ")",
        ),
        (f"Python loop, {n_loop} variants", f"{loop:.2f} s"),
        ("Python loop, per 1,000 variants", f"{loop_full:.2f} s"),
        ("Python loop, per 1,000 variants, CPU time", f"{loop_cpu_full:.2f} s"),
        ("speed-up, warm (loop / kernel)", f"{speedup:.1f}x  (target >= 50x)"),
        ("speed-up in CPU time (load-robust)", f"{speedup_cpu:.1f}x"),
        ("speed-up, warm (engine / kernel)", f"{engine_warm / warm:.1f}x"),
        ("max |kernel - engine| equity / capital", f"{max_diff:.2e}  (every variant)"),
        ("max |kernel - loop| equity / capital", f"{loop_diff:.2e}  ({n_loop} variants)"),
    ]
    print_table(rows)
    write_json(
        args.json,
        {
            "benchmark": "backtest",
            "sweep_warm_s": warm,
            "sweep_cold_s": cold,
            "engine_warm_s": engine_warm,
            "python_loop_s": loop_full,
            "python_loop_variants_run": n_loop,
            "speedup_warm": speedup,
            "sweep_warm_cpu_s": min(warm_cpu),
            "python_loop_cpu_s": loop_cpu_full,
            "speedup_cpu": speedup_cpu,
            "sweep_warm_runs_s": warm_runs,
            "max_equity_diff": max_diff,
            "max_equity_diff_loop": loop_diff,
            "variants": len(variants),
            "orders": int(orders.sum()),
            "instrument": args.instrument,
            "data": label,
            "load_at_measurement": load,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
