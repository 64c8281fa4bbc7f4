"""Forecaster benchmarks on this CPU: training throughput, inference latency, feature building.

    python -m benchmarks.bench_models [--threads 1] [--db /tmp/real.duckdb]

Training and inference use the default ``ForecastConfig`` shapes (20 daily tokens, one session
of 48 five-minute tokens).  Feature building runs on 20 years of daily bars plus every intraday
bar (the real store when ``--db`` is given, else a synthetic market of the same size), in polars
and in a pandas reference implementation, and checks that both agree.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import polars as pl
import torch

from feeds.resample import resample_intraday
from feeds.session import CASH_GRID
from feeds.synthetic import synthetic_market
from models.config import ForecastConfig
from models.export import export_torchscript, load_torchscript
from models.factory import build, model_config
from models.features import (
    DAILY_FEATURES,
    INTRADAY_FEATURES,
    TOKEN_FEATURES,
    Windows,
    build_windows,
    daily_feature_table,
    intraday_feature_table,
    slots_per_session,
)
from models.train import fit, tensors

R = TypeVar("R")


def random_windows(cfg: ForecastConfig, n: int, intraday_share: float, seed: int = 0) -> Windows:
    """Standard-normal windows of the configured shapes; ``intraday_share`` have intraday bars."""
    rng = np.random.default_rng(seed)
    spec = cfg.features
    t = spec.intraday_sessions * slots_per_session(spec.intraday_minutes)
    has = rng.random(n) < intraday_share
    return Windows(
        sessions=np.arange(n).astype("datetime64[D]"),
        x_daily=rng.standard_normal((n, spec.daily_window, len(TOKEN_FEATURES))).astype(np.float32),
        x_intra=rng.standard_normal((n, t, len(INTRADAY_FEATURES))).astype(np.float32),
        m_intra=np.repeat(has[:, None], t, axis=1),
        has_intra=has,
    )


def bench_training(cfg: ForecastConfig) -> None:
    print("## training throughput (samples/s, 2 epochs of 4096 samples, batch 128)")
    y = np.random.default_rng(1).integers(0, 2, 4096)
    for name, share in (("fused", 1.0), ("fused", 0.33), ("fused", 0.0), ("lstm", 1.0)):
        w = random_windows(cfg, 4096, share)
        model = build(model_config(name, cfg.features, cfg.model))
        r = fit(model, w, y, cfg.train, max_epochs=2)
        label = f"{name} ({share:.0%} with intraday)"
        print(f"{label:>32}: {r.samples_seen / r.seconds:8.0f} samples/s")


def _time_inference(f: Callable[..., torch.Tensor], one: tuple, batch: tuple) -> tuple[float, ...]:
    with torch.inference_mode():
        for _ in range(50):
            f(*one)
        lat = []
        for _ in range(1000):
            t = time.perf_counter()
            f(*one)
            lat.append(time.perf_counter() - t)
        for _ in range(10):
            f(*batch)
        reps, t = 300, time.perf_counter()
        for _ in range(reps):
            f(*batch)
        per_s = 64 * reps / (time.perf_counter() - t)
    ms = np.array(lat) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), per_s


def bench_inference(cfg: ForecastConfig, tmp: Path) -> None:
    print("## inference (fused; every sample has intraday bars; targets p50 <= 2 ms, >= 10k/s)")
    model = build(model_config("fused", cfg.features, cfg.model)).eval()
    one = tensors(random_windows(cfg, 1, 1.0, seed=2))
    batch = tensors(random_windows(cfg, 64, 1.0, seed=3))
    example = random_windows(cfg, 8, 1.0, seed=4)
    scripted = load_torchscript(export_torchscript(model, example, tmp / "fused.ts"))
    for name, f in (("eager", model), ("TorchScript (frozen)", scripted)):
        p50, p99, per_s = _time_inference(f, one, batch)
        print(
            f"{name:>22}: single-sample p50 {p50:.3f} ms, p99 {p99:.3f} ms; "
            f"batch-64 {per_s:,.0f} forecasts/s"
        )


# --- pandas reference of the polars feature builders (same definitions, independent code) ---


def daily_reference(daily: pd.DataFrame, z: int, v: int) -> pd.DataFrame:
    d = daily.sort_values("session").reset_index(drop=True)
    ret = pd.Series(np.log(d["close"] / d["close"].shift(1)))
    hl = d["high"] - d["low"]

    def zscore(col: str) -> pd.Series:
        x = pd.Series(np.log1p(d[col]))
        return (x - x.rolling(z).mean()) / (x.rolling(z).std() + 1e-6)

    return pd.DataFrame(
        {
            "session": d["session"],
            "ret": ret,
            "range": np.log(d["high"] / d["low"]),
            "close_pos": np.where(hl > 0, (d["close"] - d["low"]) / hl.where(hl > 0, 1.0), 0.5),
            "volume_z": zscore("volume"),
            "amount_z": zscore("amount"),
            "realised_vol": ret.rolling(v).std(),
        }
    )


def intraday_reference(bars: pd.DataFrame, minutes: int) -> pd.DataFrame:
    b = bars.sort_values("ts").copy()
    local = b["ts"].dt.tz_convert("Asia/Shanghai")
    mod = local.dt.hour * 60 + local.dt.minute
    g = CASH_GRID
    half = g.morning_minutes // minutes
    slot = pd.Series(np.nan, index=b.index)
    am = (mod > g.am_open) & (mod <= g.am_close)
    pm = (mod > g.pm_open) & (mod <= g.pm_close)
    slot[am] = (mod[am] - g.am_open) // minutes - 1
    slot[pm] = half + (mod[pm] - g.pm_open) // minutes - 1
    same_day = local.dt.normalize().dt.tz_localize(None) == pd.to_datetime(b["session"])
    ok = slot.notna() & (mod % minutes == 0) & same_day
    b, slot = b[ok].drop_duplicates("ts"), slot[ok].astype(int)
    prev = b.groupby("session")["close"].shift(1).fillna(b["open"])
    lv = np.log(b["volume"] + 1.0)
    return pd.DataFrame(
        {
            "session": b["session"],
            "slot": slot,
            "ret": np.log(b["close"] / prev),
            "range": np.log(b["high"] / b["low"]),
            "log_volume": lv - lv.groupby(b["session"]).transform("mean"),
            "session_pos": slot / g.slots(minutes),
            "afternoon": (slot >= half).astype(float),
        }
    )


def _bars(db: str | None) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    if db:
        from feeds.store import open_store
        from models.inputs import load_daily, load_intraday

        con = open_store(db, read_only=True)
        try:
            return load_daily(con, "000300.SH"), load_intraday(con, "IF.CFE", 5), f"store {db}"
        finally:
            con.close()
    m = synthetic_market(date(2005, 4, 8), date(2025, 5, 16), seed=0, minute_sessions=1630)
    return m.daily, resample_intraday(m.minute.drop("frequency"), 5), "synthetic market"


def _median_time(f: Callable[[], R], reps: int = 7) -> tuple[float, R]:
    """Median wall time of ``reps`` calls (the box is shared: one call is noise) and a result."""
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def bench_features(cfg: ForecastConfig, db: str | None) -> None:
    daily, intra, what = _bars(db)
    print(f"## feature building: {daily.height} daily bars + {intra.height} 5m bars ({what})")
    spec = cfg.features
    dp, ip = daily.to_pandas(), intra.to_pandas()
    t_pl, pl_out = _median_time(
        lambda: (daily_feature_table(daily, spec), intraday_feature_table(intra, 5))
    )
    t_pd, pd_out = _median_time(
        lambda: (
            daily_reference(dp, spec.zscore_window, spec.vol_window),
            intraday_reference(ip, 5),
        )
    )
    t_win, w = _median_time(lambda: build_windows(daily, intra, spec), reps=3)
    (pd_d, pd_i), (ref_d, ref_i) = pl_out, pd_out
    diff_d = np.nanmax(np.abs(pd_d.select(DAILY_FEATURES).to_numpy() - ref_d[list(DAILY_FEATURES)]))
    diff_i = np.nanmax(
        np.abs(pd_i.select(INTRADAY_FEATURES).to_numpy() - ref_i[list(INTRADAY_FEATURES)])
    )
    print(
        f"  feature tables (median of 7): polars {t_pl:.3f} s, pandas reference {t_pd:.3f} s "
        f"(pandas/polars x{t_pd / t_pl:.1f}); max |diff| daily {diff_d:.2e}, intraday {diff_i:.2e}"
    )
    print(f"  build_windows (tables + {len(w)} model-ready windows): {t_win:.3f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--db", default=None, help="store with the real bars (default: synthetic)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ForecastConfig()
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    bench_training(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        bench_inference(cfg, Path(tmp))
    bench_features(cfg, args.db)


if __name__ == "__main__":
    main()
