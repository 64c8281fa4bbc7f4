"""The evaluation report's figures: rolling accuracy, reliability diagram, gate distribution."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from models.factory import ALL_MODELS
from models.metrics import hits


def plot_accuracy(pred: pl.DataFrame, path: Path, window: int = 250) -> None:
    """Rolling accuracy (``window`` sessions) of every model over time."""
    fig, ax = plt.subplots(figsize=(11, 5))
    window = max(10, min(window, pred.get_column("session").n_unique() // 3))
    for m in ALL_MODELS:
        df = pred.filter(pl.col("model") == m).sort("session")
        if df.height < window:
            continue
        hit = pl.Series(hits(df.get_column("label"), df.get_column("p_up")), dtype=pl.Float64)
        ax.plot(
            df.get_column("session").to_list(), hit.rolling_mean(window).to_list(), label=m, lw=1.0
        )
    ax.axhline(0.5, color="k", lw=0.6, ls="--")
    ax.set_ylabel(f"accuracy, trailing {window} sessions")
    ax.legend(ncol=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(curves: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Mean forecast against realised up share per equal-count bin, one line per model."""
    fig, ax = plt.subplots(figsize=(6, 6))
    lo, hi = 0.4, 0.6
    for m, pts in curves.items():
        x = [p["p_mean"] for p in pts]
        y = [p["up_share"] for p in pts]
        lo, hi = min(lo, *x, *y), max(hi, *x, *y)
        ax.plot(x, y, marker="o", ms=3, lw=1.0, label=m)
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.6, ls="--", label="perfectly calibrated")
    ax.set_xlabel("mean forecast P(up) in bin")
    ax.set_ylabel("realised share of up sessions")
    ax.set_title("Reliability (10 equal-count bins)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gate(pred: pl.DataFrame, path: Path, ablation_end: date) -> None:
    """Distribution of the fused model's gate on sessions with intraday bars."""
    g = pred.filter(
        (pl.col("model") == "fused") & pl.col("has_intra") & (pl.col("session") <= ablation_end)
    ).get_column("gate")
    fig, ax = plt.subplots(figsize=(7, 4))
    if g.len():
        ax.hist(g.to_numpy(), bins=40, range=(0.0, 1.0), color="tab:blue")
    ax.set_xlabel("gate g (weight of the intraday branch)")
    ax.set_ylabel("sessions")
    ax.set_title(f"Fused gate on intraday sessions up to {ablation_end} (n = {g.len()})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
