"""Hyperparameters chosen on the inner validation slice of a training window, never on tests.

A training window of n samples splits chronologically into an inner training part and its last
``val_fraction`` (the inner validation slice, the same tail the training loop stops on).  Every
candidate is fitted on the inner part and scored by the log loss of its seed ensemble on the
slice; the lowest wins.  Test sessions are not an argument of anything here, so they cannot
influence a choice (tests/models/test_selection.py plants a change in a test block to show it).

Candidates are fixed for a whole walk-forward: the configured values first, then draws from
``SearchSpace`` with a fixed seed, so a warm-started fit can continue the same candidate's
weights from one block to the next.
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.config import ForecastConfig, ModelSettings, TrainSettings
from models.factory import build, model_config
from models.features import Windows
from models.logistic import LogisticModel, fit_logistic
from models.metrics import log_loss
from models.multiscale import MultiScaleForecaster
from models.normalise import NormStats
from models.train import fit, predict

_FUSED_KEYS = (
    "d_model",
    "dropout",
    "lr",
    "weight_decay",
    "gate_penalty",
    "attn_entropy_penalty",
    "residual_penalty",
    "attend_len",
)
_LSTM_KEYS = ("lstm_hidden", "dropout", "lr", "weight_decay", "attend_len")
_TRAIN_KEYS = ("lr", "weight_decay")


@dataclass(frozen=True)
class Candidate:
    """One point of the search space, as settings of the model and of the loop."""

    index: int
    model: ModelSettings
    train: TrainSettings

    def params(self, family: str) -> dict[str, Any]:
        keys = _LSTM_KEYS if family == "lstm" else _FUSED_KEYS
        out: dict[str, Any] = {}
        for k in keys:
            src = self.train if k in _TRAIN_KEYS else self.model
            out[k] = getattr(src, k)
        return out


def candidates(cfg: ForecastConfig, family: str) -> list[Candidate]:
    """The configured point first, then distinct seeded draws from the declared space."""
    ev, sp = cfg.evaluation, cfg.evaluation.search
    n = ev.candidates if ev.select else 1
    keys = _LSTM_KEYS if family == "lstm" else _FUSED_KEYS
    grid = [getattr(sp, k) for k in keys]
    points = list(itertools.product(*grid))
    rng = np.random.default_rng(20240501 + (family == "lstm"))
    order = rng.permutation(len(points))
    base = Candidate(0, cfg.model, cfg.train)
    out, seen = [base], {tuple(base.params(family).values())}
    for i in order:
        if len(out) >= n:
            break
        vals = dict(zip(keys, points[i], strict=True))
        if tuple(vals.values()) in seen:
            continue
        seen.add(tuple(vals.values()))
        m = {k: v for k, v in vals.items() if k not in _TRAIN_KEYS}
        if "d_model" in m and m["d_model"] % cfg.model.short_heads:
            continue
        t = {k: v for k, v in vals.items() if k in _TRAIN_KEYS}
        out.append(
            Candidate(len(out), cfg.model.model_copy(update=m), cfg.train.model_copy(update=t))
        )
    return out


def inner_split(n: int, settings: TrainSettings) -> int:
    """Samples of the inner training part (the loop's own split: the rest is validation)."""
    return n - max(1, round(n * settings.val_fraction))


def select_logistic(
    raw: Windows, y: np.ndarray, norm: NormStats, cfg: ForecastConfig
) -> tuple[LogisticModel, dict[str, Any]]:
    """Lags and C by inner-validation log loss, then refitted on the whole training window."""
    ev = cfg.evaluation
    grid = (
        list(itertools.product(ev.search.logistic_lags, ev.search.logistic_c))
        if ev.select
        else [(ev.logistic_lags, ev.logistic_c)]
    )
    n_fit = inner_split(len(raw), cfg.train)
    scores: list[dict[str, Any]] = []
    for lags, c in grid:
        if len(grid) == 1:
            break
        m = fit_logistic(raw.take(np.arange(n_fit)), y[:n_fit], norm, lags=lags, c=c)
        p = m.predict(raw.take(np.arange(n_fit, len(raw))))
        scores.append({"lags": lags, "c": c, "val_log_loss": log_loss(y[n_fit:], p)})
    best = (
        min(scores, key=lambda r: r["val_log_loss"])
        if scores
        else {"lags": grid[0][0], "c": grid[0][1]}
    )
    model = fit_logistic(raw, y, norm, lags=int(best["lags"]), c=float(best["c"]))
    return model, {"lags": int(best["lags"]), "c": float(best["c"]), "scores": scores}


@dataclass(frozen=True)
class FitTask:
    """One seeded fit of one candidate of one model in one block (what an executor runs)."""

    block: str
    model: str
    candidate: Candidate
    seed: int
    max_epochs: int | None
    init_state: dict[str, torch.Tensor] | None
    linear: tuple[np.ndarray, float] | None  # the block's logistic (coef, intercept)

    def __repr__(self) -> str:
        c = self.candidate.index
        return f"FitTask(block={self.block}, model={self.model}, candidate={c}, seed={self.seed})"


@dataclass(frozen=True)
class FitOutput:
    state: dict[str, torch.Tensor]
    record: dict[str, Any]


def train_view(name: str, w: Windows, y: np.ndarray) -> tuple[Windows, np.ndarray]:
    """The samples model ``name`` trains on (intraday_only: only sessions with intraday bars)."""
    if name != "intraday_only":
        return w, y
    keep = np.nonzero(w.has_intra)[0]
    return w.take(keep), y[keep]


def run_fit(shared: tuple[Windows, np.ndarray, ForecastConfig], task: FitTask) -> FitOutput:
    """Build, (warm-)start and fit one member; the executor's unit of work."""
    tr, ytr, cfg = shared
    tr, ytr = train_view(task.model, tr, ytr)
    lags = task.linear[0].size // tr.x_daily.shape[-1] if task.linear is not None else 2
    mc = model_config(task.model, cfg.features, task.candidate.model, linear_lags=lags)
    model = build(mc, seed=task.seed)
    if task.init_state is not None:
        keep = {k: v for k, v in task.init_state.items() if not k.startswith("linear.")}
        model.load_state_dict(keep, strict=False)
    if task.linear is not None and isinstance(model, MultiScaleForecaster) and model.cfg.linear:
        model.set_linear(*task.linear)
    settings = task.candidate.train.model_copy(update={"seed": task.seed})
    t = time.perf_counter()
    r = fit(model, tr, ytr, settings, max_epochs=task.max_epochs, warm=task.init_state is not None)
    kept = _keep_residual_if_it_helps(model, tr, ytr, settings, r.best_val_loss)
    record = {
        "block": task.block,
        "model": task.model,
        "candidate": task.candidate.index,
        "seed": task.seed,
        "n_train": len(tr),
        "epochs": r.epochs,
        "best_epoch": r.best_epoch,
        "stopped": r.stopped,
        "best_val_loss": round(r.best_val_loss, 6),
        "seconds": round(time.perf_counter() - t, 3),
        "warm": task.init_state is not None,
        "residual_kept": kept,
    }
    return FitOutput({k: v.detach().clone() for k, v in model.state_dict().items()}, record)


def _keep_residual_if_it_helps(
    model: torch.nn.Module, tr: Windows, y: np.ndarray, settings: TrainSettings, val_loss: float
) -> bool | None:
    """Zero the residual of a linear-path model unless it beat the linear path on validation."""
    if not (isinstance(model, MultiScaleForecaster) and model.cfg.linear):
        return None
    idx = np.arange(inner_split(len(tr), settings), len(tr))
    plain = copy.deepcopy(model)
    plain.zero_residual()
    if log_loss(y[idx], predict(plain, tr.take(idx))[0]) <= val_loss:
        model.zero_residual()
        return False
    return True


def member_val_probabilities(
    models: list[torch.nn.Module], tr: Windows, ytr: np.ndarray, name: str, settings: TrainSettings
) -> tuple[np.ndarray, np.ndarray]:
    """[K, n_val] member probabilities on the inner validation slice and its labels."""
    w, y = train_view(name, tr, ytr)
    idx = np.arange(inner_split(len(w), settings), len(w))
    val = w.take(idx)
    return np.stack([predict(m, val)[0] for m in models]), y[idx]
