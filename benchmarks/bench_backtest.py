"""Sweep benchmark: 1,000 long/flat variants over 20 years of daily bars, vectorbt vs a Python loop.

``python -m benchmarks.bench_backtest [--instrument if] [--oracle-variants 1000] [--fresh-jit]``

Variants: 10 thresholds x 10 cost levels x 10 execution lags, one ``Portfolio.from_orders``
call.  Data: the real Wind CSI 300 daily bars when ``../shared/data/real`` is present, else the
synthetic market over 2005-2024; P(up) is seeded uniform noise (many orders: a hard case).

- cold: the first sweep in this process: numba JIT compile, or loading numba's on-disk cache
  (``--fresh-jit`` points NUMBA_CACHE_DIR at an empty folder, so the compile is measured);
- warm: best of 3 further sweeps (targets, schedule, simulation, equity and figures included);
- loop: ``backtest.oracle.run_oracle`` (a per-bar Python loop with the same rule and costs)
  over the same scheduled targets, one variant after another; it is given the schedule, so its
  time excludes signal-to-target work that the vectorbt time includes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench_backtest")
    ap.add_argument("--instrument", default="if", choices=["if", "etf", "stock"])
    ap.add_argument("--oracle-variants", type=int, default=1000)
    ap.add_argument("--fresh-jit", action="store_true", help="compile numba kernels from scratch")
    args = ap.parse_args(argv)
    if args.fresh_jit:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cold-")

    t0 = time.perf_counter()
    from backtest.config import BacktestConfig, SignalRule, SweepGrid
    from backtest.engine import session_equity, simulate
    from backtest.inputs import bars_for_backtest, persistence_predictions
    from backtest.oracle import run_oracle
    from backtest.signals import layout, schedule, target_positions
    from backtest.sweep import Variants, sweep_equity
    from backtest.trading import performance

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

    def sweep() -> tuple[np.ndarray, np.ndarray]:
        eq, orders = sweep_equity(
            p_up, signal_index, lay, profile, rule, variants, init_cash=cfg.init_cash
        )
        performance(eq, cfg.periods_per_year)
        return eq, orders

    t0 = time.perf_counter()
    sweep()
    cold = time.perf_counter() - t0
    warm_runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        equity, orders = sweep()
        warm_runs.append(time.perf_counter() - t0)
    warm = min(warm_runs)

    # the Python loop over the same scheduled targets, variant by variant
    targets = target_positions(p_up, rule, long_above=variants.threshold)
    sched = schedule(
        targets, signal_index, lay, variants.lag, intraday=False, t_plus_one=profile.t_plus_one
    )
    n_loop = min(args.oracle_variants, len(variants))
    cols = np.linspace(0, len(variants) - 1, n_loop).astype(int)
    t0 = time.perf_counter()
    loop_equity = [
        run_oracle(
            lay.price,
            lay.mark,
            sched.target[:, c],
            lay.session,
            sched.closes_today[:, c],
            profile,
            init_cash=cfg.init_cash,
            scale=float(variants.cost_multiplier[c]),
        ).equity
        for c in cols
    ]
    loop = time.perf_counter() - t0
    loop_full = loop * len(variants) / n_loop
    diff = max(
        float(np.max(np.abs(equity[:, c] - e[lay.session_end]))) / cfg.init_cash
        for c, e in zip(cols, loop_equity, strict=True)
    )
    # one-variant check of the engine itself against the loop (not timed)
    one = simulate(lay, sched, profile, init_cash=cfg.init_cash, scale=variants.cost_multiplier)
    assert np.allclose(session_equity(one, lay), equity, rtol=0, atol=1e-6 * cfg.init_cash)

    rows = [
        ("data", f"{label}: {len(sessions)} sessions {sessions[0]} .. {sessions[-1]}"),
        (
            "variants",
            f"{len(variants)} = 10 thresholds x 10 cost levels x 10 lags, "
            f"{args.instrument} costs, long/flat",
        ),
        ("orders simulated", f"{int(orders.sum()):,}"),
        ("imports (vectorbt, numba)", f"{import_s:.2f} s"),
        (
            "vectorbt sweep, cold (first call: JIT" + (")" if args.fresh_jit else " or cache)"),
            f"{cold:.2f} s",
        ),
        ("JIT compile / cache load (cold - warm)", f"{cold - warm:.2f} s"),
        (
            "vectorbt sweep, warm (best of 3)",
            f"{warm:.3f} s  (runs: " + ", ".join(f"{w:.3f}" for w in warm_runs) + ")",
        ),
        (f"Python loop, {n_loop} variants", f"{loop:.2f} s"),
        ("Python loop, per 1,000 variants", f"{loop_full:.2f} s"),
        ("speed-up, warm (loop / vectorbt)", f"{loop_full / warm:.1f}x  (target >= 100x)"),
        ("max |equity difference| / capital", f"{diff:.2e}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
