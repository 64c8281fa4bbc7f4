"""Training data as of a run date, continual fine-tuning from the champion, from-scratch fits.

As of run date D the labelled sessions are those whose label settled by D's close.  The newest
``gate.window_sessions`` of them form the gate window: no model made on D trains on it, so the
promotion gate scores challenger and champion on sessions neither has seen.  A fine-tune trains
on the ``recent_sessions`` labelled sessions just before the gate window plus a seeded random
``replay_sample`` of older ones (against forgetting), starting from the champion's weights and
keeping its normalisation statistics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property

import duckdb
import numpy as np
import polars as pl

from feeds.read import DEFAULT_SOURCE_PRIORITY, daily_bars, resolve_source
from models.config import ForecastConfig, TrainSettings
from models.factory import build, config_to_dict, model_config
from models.features import Windows, build_windows
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
        got = load_intraday(con, intraday_symbol, spec_cfg.features.intraday_minutes, end=as_of)
        intraday = None if got.is_empty() else got
    spec = spec_cfg.features
    windows = build_windows(daily, intraday, spec)
    lab = next_direction(daily, spec.horizon)
    keep = np.isin(windows.sessions, lab.get_column("session").to_numpy().astype("datetime64[D]"))
    w = windows.take(np.nonzero(keep)[0])
    by_session = dict(zip(lab["session"].to_list(), lab["label"].to_list(), strict=True))
    y = np.array([by_session[s.astype(object)] for s in w.sessions], dtype=np.int64)
    ts = daily.get_column("ts").max()
    assert isinstance(ts, datetime)
    return MarketData(as_of, daily, intraday, w, y, ts.astimezone(UTC))


def gate_split(n: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(trainable indices, gate-window indices) of ``n`` chronological labelled sessions."""
    if n <= window + 10:
        raise ValueError(f"only {n} labelled sessions; need more than {window + 10}")
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
    stopped: str
    best_val_loss: float

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
            "best_val_loss": round(self.best_val_loss, 6),
            "n_train": int(self.train_idx.size),
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


def _fit_budget(started: float, budget_s: float) -> float:
    left = budget_s * (1 - _RESERVE_FRACTION) - (time.perf_counter() - started)
    return max(left, 1e-3)


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
    """Continue training ``champion`` on ``train_idx`` until early stop or ``budget_s`` runs out
    (counted from ``started``, a ``time.perf_counter()`` reading; default now)."""
    t0 = time.perf_counter() if started is None else started
    settings = finetune_settings(cfg, s)
    model = build(champion.checkpoint().model_config)
    w = apply_norm(data.windows.take(train_idx), champion.norm)
    init = {k: v.clone() for k, v in champion.model.state_dict().items()}
    t_fit = time.perf_counter()
    r = fit(
        model,
        w,
        data.labels[train_idx],
        settings,
        budget_s=_fit_budget(t0, budget_s),
        init_state=init,
    )
    fc = Forecaster(r.model, champion.spec, champion.norm, champion.name, {})
    return _outcome(fc, train_idx, t0, t_fit, r)


def _outcome(
    fc: Forecaster, train_idx: np.ndarray, t0: float, t_fit: float, r: FitResult
) -> TrainOutcome:
    now = time.perf_counter()
    return TrainOutcome(
        fc, train_idx, now - t0, now - t_fit, r.samples_seen, r.epochs, r.stopped, r.best_val_loss
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
    budget_s: float,
    started: float | None = None,
) -> TrainOutcome:
    """A fresh forecaster fitted on ``train_idx`` exactly as a walk-forward block is (inner
    selection, seed ensemble, the logistic as linear path), normalisation fitted on the same
    samples; ``budget_s`` caps each fit's wall clock (the work budget is the epochs)."""
    t0 = time.perf_counter() if started is None else started
    ev = cfg.evaluation
    n_fits = ev.seeds * (ev.candidates if ev.select else 1)
    per_fit = _fit_budget(t0, budget_s) / max(n_fits, 1)
    capped = cfg.model_copy(update={"train": cfg.train.model_copy(update={"budget_s": per_fit})})
    t_fit = time.perf_counter()
    fc, _ = fit_forecaster(data.windows.take(train_idx), data.labels[train_idx], capped, name)
    now = time.perf_counter()
    return TrainOutcome(fc, train_idx, now - t0, now - t_fit, 0, 0, "selected", float("nan"))


def window_of(data: MarketData, idx: np.ndarray) -> tuple[date, date]:
    """First and last decision session of ``idx``."""
    ss = data.windows.sessions[idx]
    return ss.min().astype(object), ss.max().astype(object)
