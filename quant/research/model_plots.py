"""Notebook 02's figures: training curves, attention weights of one sample, the gate over time."""

from __future__ import annotations

from datetime import date

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from models.features import GRID, Windows
from models.normalise import apply_norm
from models.train import predict
from quant.research.figures import new_figure
from quant.research.forecasting import ResearchData, TrainedModel, gate_values
from quant.research.hooks import attention_weights


def plot_training_curves(trained: dict[str, TrainedModel]) -> Figure:
    """Log loss per epoch on the fitting part and on the validation tail, one panel a model."""
    fig = new_figure(5.0 * len(trained), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(trained), squeeze=False)[0])
    for ax, (name, t) in zip(axes, trained.items(), strict=True):
        c = t.curve
        ax.plot(c["epoch"].to_list(), c["train_loss"].to_list(), "o-", label="train (fit part)")
        ax.plot(c["epoch"].to_list(), c["val_loss"].to_list(), "s-", label="validation tail")
        ax.axvline(t.fit.best_epoch, color="grey", ls="--", lw=0.8, label="kept weights")
        acc = t.test.get("accuracy", float("nan"))
        ax.set_title(
            f"{name}: {t.fit.epochs} epochs ({t.fit.stopped}); "
            f"test accuracy {100 * acc:.1f}% (n={t.test['n']})",
            fontsize=9,
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("log loss (eval mode, no penalty)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def slot_labels(n_slots: int, minutes: int) -> list[str]:
    """Bar END times (exchange time) of the intraday token slots, session by session."""
    grid = GRID.labels(minutes)
    return [grid[j % len(grid)] for j in range(n_slots)]


def _pick(data: ResearchData, session: date | None) -> int:
    if session is not None:
        return data.sessions.index(session)
    has = np.nonzero(data.windows.has_intra[data.n_train :])[0]
    return data.n_train + int(has[-1])


def _heat(fig: Figure, ax: Axes, att: np.ndarray, labels: list[str], title: str) -> None:
    im = ax.imshow(att.mean(0), cmap="viridis", aspect="auto")
    step = max(1, len(labels) // 8)
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=45, fontsize=7)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=7)
    ax.set_xlabel("key token")
    ax.set_ylabel("query token")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)


def _last_query(
    ax: Axes, att: np.ndarray, labels: list[str], title: str, lunch: float | None = None
) -> None:
    x = np.arange(att.shape[-1])
    for h in range(att.shape[0]):
        ax.plot(x, att[h, -1], lw=0.7, alpha=0.6, label=f"head {h + 1}")
    ax.bar(x, att[:, -1].mean(0), color="k", alpha=0.25, label="mean of heads")
    if lunch is not None:
        ax.axvline(lunch, color="grey", ls=":", label="lunch break")
    step = max(1, len(labels) // 12)
    ax.set_xticks(x[::step], labels[::step], rotation=45, fontsize=7)
    ax.set_ylabel("attention weight")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)


def plot_attention(
    trained: TrainedModel, data: ResearchData, session: date | None = None
) -> Figure:
    """Attention over the daily and the intraday tokens of one sample (default: last test one)."""
    i = _pick(data, session)
    w: Windows = apply_norm(data.windows.take(np.array([i])), trained.forecaster.norm)
    att = attention_weights(trained.forecaster.model, w)
    p, g = predict(trained.forecaster.model, w)
    spec = data.cfg.features
    dl = [
        f"t-{spec.daily_window - 1 - k}" if k < spec.daily_window - 1 else "t"
        for k in range(spec.daily_window)
    ]
    il = slot_labels(w.x_intra.shape[1], spec.intraday_minutes)
    fig = new_figure(12, 8)
    (a, b), (c, d) = fig.subplots(2, 2)
    _heat(fig, a, att["daily"], dl, "daily branch, mean of heads")
    _last_query(c, att["daily"], dl, "decision session t attends to (daily tokens)")
    if "intraday" in att:
        _heat(fig, b, att["intraday"], il, "intraday branch, mean of heads")
        lunch = GRID.morning_minutes // spec.intraday_minutes - 0.5
        _last_query(d, att["intraday"], il, "closing bar attends to (intraday bar ends)", lunch)
    fig.suptitle(
        f"{trained.name} on decision session {data.sessions[i]}: P(up) {p[0]:.3f}, gate {g[0]:.3f}"
    )
    return fig


def plot_gate_over_time(trained: TrainedModel, data: ResearchData) -> Figure:
    """The gate g (weight of the intraday branch) of every session, training and test."""
    gv = gate_values(trained, data)
    fig = new_figure(10, 3.8)
    ax = fig.add_subplot()
    for split, color in (("train", "C0"), ("test", "C3")):
        part = gv.filter(gv["split"] == split)
        mean = float(part["gate"].mean())  # type: ignore[arg-type]
        ax.plot(
            part["session"].to_list(),
            part["gate"].to_list(),
            ".-",
            lw=0.7,
            color=color,
            label=f"{split} sessions (mean g {mean:.3f})",
        )
    first_test = mdates.date2num(data.test_sessions[0])
    ax.axvline(first_test, color="k", ls="--", lw=0.8, label="first test session")
    ax.set_ylabel("gate g (0 = daily branch only)")
    ax.set_title(f"{trained.name}: gate over time ({data.intraday_symbol} intraday tokens)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
