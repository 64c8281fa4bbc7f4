"""The report's figures as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from backtest.accuracy import rolling_accuracy
from backtest.run import BacktestResult
from backtest.trading import drawdown

PLOTS = ("equity", "drawdown", "rolling_accuracy", "calibration")
_SIZE = (9.0, 4.0)


def _save(
    fig: plt.Figure,
    path: Path,
    ax: plt.Axes,
    title: str,
    ylabel: str,
    legend: Literal["best", "upper left"] = "best",
) -> Path:
    """Title, y label, legend and grid of ``ax``; then write ``fig`` to ``path`` and close it."""
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _days(sessions: list[date]) -> np.ndarray:
    return np.array(sessions, dtype="datetime64[D]")


def plot_equity(r: BacktestResult, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot(_days(r.sessions), r.equity / r.equity[0], label=f"{r.model} on {r.instrument} (net)")
    ax.plot(_days(r.sessions), r.benchmark / r.benchmark[0], label="index buy-and-hold (no costs)")
    ax.set_yscale("log")
    return _save(
        fig, path, ax, "Equity against buy-and-hold (index proxy)", "growth of 1 (log scale)"
    )


def plot_drawdown(r: BacktestResult, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.fill_between(_days(r.sessions), drawdown(r.equity)[:, 0], 0, alpha=0.5, label="strategy")
    ax.plot(
        _days(r.sessions), drawdown(r.benchmark)[:, 0], color="grey", lw=0.8, label="buy-and-hold"
    )
    return _save(fig, path, ax, "Drawdown from the running peak", "drawdown")


def plot_rolling_accuracy(r: BacktestResult, path: Path) -> Path:
    w = r.accuracy["rolling_window"]
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot(_days(r.accuracy_sessions), r.accuracy["rolling_accuracy"], label=r.model)
    up = r.labels > 0.5
    ax.plot(
        _days(r.accuracy_sessions), rolling_accuracy(up, w), lw=0.8, alpha=0.7, label="always up"
    )
    ax.axhline(0.5, color="black", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    return _save(fig, path, ax, "Rolling directional accuracy", f"accuracy, trailing {w} sessions")


def plot_calibration(r: BacktestResult, path: Path) -> Path:
    cal = r.accuracy["calibration"]
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="perfect calibration")
    if cal:
        x = np.array([c["mean_p_up"] for c in cal])
        y = np.array([c["observed_up"] for c in cal])
        n = np.array([c["n"] for c in cal])
        ax.scatter(x, y, s=20 + 200 * n / n.max(), label="P(up) bins (size: sessions)")
        ax.plot(x, y, lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(up)")
    return _save(fig, path, ax, "Calibration of P(up)", "observed up frequency", "upper left")


def write_plots(r: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """Write every plot as ``out_dir/<name>.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    makers = {
        "equity": plot_equity,
        "drawdown": plot_drawdown,
        "rolling_accuracy": plot_rolling_accuracy,
        "calibration": plot_calibration,
    }
    return {name: make(r, out_dir / f"{name}.png") for name, make in makers.items()}
