"""Training data as of a run date, continual fine-tuning from the champion, from-scratch fits.

As of run date D the labelled sessions are those whose label settled by D's close.  The newest
``gate.window_sessions`` of them form the gate window: no model made on D trains on it, so the
promotion gate scores challenger and champion on sessions neither has seen.  A fine-tune trains
on the ``recent_sessions`` labelled sessions just before the gate window plus a seeded random
``replay_sample`` of older ones (against forgetting), starting from the champion's weights and
keeping its normalisation statistics.  Each ensemble member (or the model itself) is trained for
a fixed number of optimiser steps with an L2-SP anchor towards its champion weights; the
wall-clock budget is a hard cap on top (see docs/operations.md, "Fine-tune budget").
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property

import duckdb
import numpy as np
import polars as pl
import torch
from torch import Tensor, nn

from feeds.read import DEFAULT_SOURCE_PRIORITY, daily_bars, resolve_source
from models.config import FeatureSpec, ForecastConfig, TrainSettings
from models.executor import Executor
from models.factory import config_to_dict, model_config
from models.features import FeatureError, Windows, build_windows, spec_for_series
from models.forecaster import Forecaster
from models.inputs import load_intraday
from models.labels import next_direction
from models.normalise import apply_norm
from models.train import FitResult, fit
from models.walkforward import fit_forecaster
from quant.registry import config_hash
from quant.settings_pipeline import FinetuneSettings

_RESERVE_FRACTION = 0.02  # of the budget, kept back for saving the weights


@dataclass(frozen=True)
class MarketData:
    """Everything a run on ``as_of`` may read: bars up to its close, labelled windows."""

    as_of: date
    daily: pl.DataFrame
    intraday: pl.DataFrame | None
    windows: Windows  # raw inputs of every labelled session with a full window, chronological
    labels: np.ndarray  # next-session direction of each window
    last_bar_ts: datetime  # end of the newest daily bar (UTC)
    spec: FeatureSpec  # the configured spec after the amount policy (``spec_for_series``)
    intraday_symbol: str | None = None  # instrument of the intraday bars (None: none read)

    @cached_property
    def sessions(self) -> list[date]:
        return self.windows.sessions.astype(object).tolist()


def load_market(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    spec_cfg: ForecastConfig,
    as_of: date,
    *,
    intraday_symbol: str | None,
    source_priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY,
) -> MarketData:
    """Bars of ``symbol`` (its preferred source) with session <= ``as_of`` and labelled model
    inputs built from them."""
    source = resolve_source(con, symbol, "1d", source_priority)
    daily = daily_bars(con, symbol, end=as_of, source=source)
    intraday = None
    if intraday_symbol is not None:
        minutes = spec_cfg.features.intraday_minutes
        got = load_intraday(con, intraday_symbol, minutes, end=as_of, priority=source_priority)
        intraday = None if got.is_empty() else got
    spec = spec_for_series(daily, spec_cfg.features)
    windows = build_windows(daily, intraday, spec)
    lab = next_direction(daily, spec.horizon)
    keep = np.isin(windows.sessions, lab.get_column("session").to_numpy().astype("datetime64[D]"))
    w = windows.take(np.nonzero(keep)[0])
    by_session = dict(zip(lab["session"].to_list(), lab["label"].to_list(), strict=True))
    y = np.array([by_session[s.astype(object)] for s in w.sessions], dtype=np.int64)
    ts = daily.get_column("ts").max()
    assert isinstance(ts, datetime)
    return MarketData(as_of, daily, intraday, w, y, ts.astimezone(UTC), spec, intraday_symbol)


def gate_split(n: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(trainable indices, gate-window indices) of ``n`` chronological labelled sessions."""
    if n <= window + 10:
        raise FeatureError(f"only {n} labelled sessions; need more than {window + 10}")
    return np.arange(n - window), np.arange(n - window, n)


def finetune_indices(
    pool: np.ndarray, s: FinetuneSettings, run_date: date
) -> tuple[np.ndarray, np.ndarray]:
    """(recent, replay) indices: the newest of ``pool`` and a seeded sample of the older ones."""
    recent = pool[-s.recent_sessions :]
    older = pool[: max(pool.size - s.recent_sessions, 0)]
    rng = np.random.default_rng([s.seed, run_date.toordinal()])
    k = min(s.replay_sample, older.size)
    replay = np.sort(rng.choice(older, size=k, replace=False)) if k else older[:0]
    return recent, replay


@dataclass(frozen=True)
class TrainOutcome:
    forecaster: Forecaster
    train_idx: np.ndarray
    seconds: float  # whole call, preparation included
    fit_seconds: float
    samples_seen: int
    epochs: int
    stopped: str  # stop reasons of the members, joined with "+"
    best_val_loss: float  # mean over the members
    steps: int = 0  # optimiser steps, all members
    max_steps: int | None = None  # step budget per member (None: from-scratch fit)
    changed_members: int = 1  # members whose kept weights are not their starting weights

    @property
    def samples_per_s(self) -> float:
        return self.samples_seen / max(self.fit_seconds, 1e-9)

    def metrics(self) -> dict[str, float | int | str]:
        return {
            "train_seconds": round(self.seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "samples_seen": self.samples_seen,
            "samples_per_s": round(self.samples_per_s, 1),
            "epochs": self.epochs,
            "stopped": self.stopped,
            "best_val_loss": round(self.best_val_loss, 6)
            if np.isfinite(self.best_val_loss)
            else "",  # a from-scratch fit: see the walk-forward's own records
            "n_train": int(self.train_idx.size),
            "steps": self.steps,
            "max_steps": self.max_steps or 0,  # 0: no step budget (a from-scratch fit)
            "changed_members": self.changed_members,
        }


def model_hash(cfg: ForecastConfig, name: str, train: TrainSettings) -> str:
    mc = model_config(name, cfg.features, cfg.model)
    return config_hash(
        {
            "model": config_to_dict(mc),
            "features": cfg.features.model_dump(),
            "train": train.model_dump(),
        }
    )


def _fit_budget(started: float, budget_s: float | None) -> float | None:
    if budget_s is None:
        return None
    left = budget_s * (1 - _RESERVE_FRACTION) - (time.perf_counter() - started)
    return max(left, 1e-3)


def members(model: nn.Module) -> list[nn.Module]:
    """The independently fitted networks of ``model``: an ensemble's members, else itself."""
    got = getattr(model, "members", None)
    return list(got) if isinstance(got, nn.ModuleList) else [model]


def anchor_penalty(model: nn.Module, weight: float) -> Callable[[], Tensor] | None:
    """L2-SP: ``weight * sum((w - w0)^2)`` over the trainable weights, ``w0`` their values now."""
    if weight <= 0:
        return None
    pairs = [(p, p.detach().clone()) for p in model.parameters() if p.requires_grad]

    def penalty() -> Tensor:
        return weight * torch.stack([((p - p0) ** 2).sum() for p, p0 in pairs]).sum()

    return penalty


def step_seconds(model: nn.Module, w: Windows, y: np.ndarray, settings: TrainSettings) -> float:
    """Measured seconds per optimiser step on a throw-away copy of ``model`` (3 steps, the first
    one not counted).  Only the step budget's production calibration uses it."""
    probe = copy.deepcopy(model)
    with torch.random.fork_rng():
        fit(probe, w, y, settings, max_steps=1, max_epochs=1)
        t = time.perf_counter()
        fit(probe, w, y, settings, max_steps=2, max_epochs=1)
    return (time.perf_counter() - t) / 2


def calibrated_steps(max_steps: int, seconds_per_step: float, seconds_left: float) -> int:
    """The step budget that fits ``seconds_left`` at the measured rate (90% of it), capped."""
    fits = int(0.9 * seconds_left / max(seconds_per_step, 1e-9))
    return max(1, min(max_steps, fits))


def finetune(
    champion: Forecaster,
    data: MarketData,
    train_idx: np.ndarray,
    cfg: ForecastConfig,
    s: FinetuneSettings,
    *,
    budget_s: float,
    started: float | None = None,
) -> TrainOutcome:
    """Continue training each member of ``champion`` on ``train_idx`` for at most
    ``s.max_steps`` optimiser steps (early stopping may end it sooner), with the L2-SP anchor
    towards the champion's weights; ``budget_s`` wall-clock seconds (counted from ``started``, a
    ``time.perf_counter()`` reading; default now) are a hard cap shared by the members.
    ``s.calibrate_steps`` lowers the step budget to what the measured throughput fits in it."""
    t0 = time.perf_counter() if started is None else started
    if champion.spec.use_amount != data.spec.use_amount:
        had, bars = ("with", "lack") if champion.spec.use_amount else ("without", "carry")
        raise FeatureError(
            f"the champion was trained {had} the turnover feature, but the stored daily bars "
            f"{bars} amount; train a new model from scratch for this series"
        )
    settings = finetune_settings(cfg, s)
    model = copy.deepcopy(champion.model)
    nets = members(model)
    w = apply_norm(data.windows.take(train_idx), champion.norm)
    y = data.labels[train_idx]
    steps = s.max_steps
    if s.calibrate_steps:
        per_member = (_fit_budget(t0, budget_s) or 0.0) / len(nets)
        steps = calibrated_steps(steps, step_seconds(nets[0], w, y, settings), per_member)
    t_fit = time.perf_counter()
    results = []
    for k, net in enumerate(nets):
        time_left = _fit_budget(t0, budget_s)
        share = None if time_left is None else max(time_left / (len(nets) - k), 1e-3)
        results.append(
            fit(
                net,
                w,
                y,
                settings.model_copy(update={"seed": settings.seed + k}),
                budget_s=share,
                max_steps=steps,
                regulariser=anchor_penalty(net, s.anchor),
                warm=True,
            )
        )
    model.eval()
    fc = Forecaster(model, champion.spec, champion.norm, champion.name, _meta(data))
    return _outcome(fc, train_idx, t0, t_fit, results, steps)


def _meta(data: MarketData) -> dict[str, object]:
    """Checkpoint metadata serving needs: which intraday instrument the model was fitted on."""
    return {} if data.intraday is None else {"intraday_symbol": data.intraday_symbol}


def _outcome(
    fc: Forecaster,
    train_idx: np.ndarray,
    t0: float,
    t_fit: float,
    rs: list[FitResult],
    max_steps: int | None = None,
) -> TrainOutcome:
    now = time.perf_counter()
    stops = sorted({r.stopped for r in rs})
    return TrainOutcome(
        fc,
        train_idx,
        now - t0,
        now - t_fit,
        sum(r.samples_seen for r in rs),
        max(r.epochs for r in rs),
        "+".join(stops),
        float(np.mean([r.best_val_loss for r in rs])),
        sum(r.steps for r in rs),
        max_steps,
        sum(r.best_epoch > 0 for r in rs),  # best_epoch 0: the starting weights were kept
    )


def finetune_settings(cfg: ForecastConfig, s: FinetuneSettings) -> TrainSettings:
    return cfg.train.model_copy(
        update={"lr": s.lr, "max_epochs": s.max_epochs, "patience": s.patience, "seed": s.seed}
    )


def train_scratch(
    data: MarketData,
    train_idx: np.ndarray,
    cfg: ForecastConfig,
    name: str,
    *,
    started: float | None = None,
    executor: Executor | None = None,
) -> TrainOutcome:
    """A fresh forecaster fitted on ``train_idx`` exactly as a walk-forward block is
    (``models.walkforward.fit_forecaster``: inner selection, seed ensemble, the logistic as
    linear path, normalisation fitted on the same samples), so a first champion is what
    ``quant evaluate`` would train there.  No wall-clock budget: each fit stops on early
    stopping or ``max_epochs`` (reproducible).  ``executor``: where the fits run (in process by
    default)."""
    t0 = time.perf_counter() if started is None else started
    t_fit = time.perf_counter()
    raw, y = data.windows.take(train_idx), data.labels[train_idx]
    spec_cfg = cfg.model_copy(update={"features": data.spec})
    fc, _ = fit_forecaster(raw, y, spec_cfg, name, executor=executor)
    fc.meta.update(_meta(data))
    now = time.perf_counter()
    return TrainOutcome(fc, train_idx, now - t0, now - t_fit, 0, 0, "selected", float("nan"))


def window_of(data: MarketData, idx: np.ndarray) -> tuple[date, date]:
    """First and last decision session of ``idx``."""
    ss = data.windows.sessions[idx]
    return ss.min().astype(object), ss.max().astype(object)
