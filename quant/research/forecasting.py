"""Notebook 02: the fused model and the LSTM on a short window, and the walk-forward ablation.

The window is the latest stretch of sessions that all have intraday bars (IF futures bars on
real data, else the synthetic minute bars), so the gate and the intraday attention are defined
for every sample.  Training goes through ``models.train.fit``; curves come from a hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np
import polars as pl
import torch

from feeds.read import sources
from models.config import ForecastConfig
from models.factory import build, model_config
from models.features import Windows, build_windows
from models.forecaster import Forecaster
from models.labels import labelled, next_direction
from models.metrics import score_directional
from models.normalise import apply_norm, fit_norm
from models.report import evaluation_document
from models.train import FitResult, fit
from models.walkforward import walk_forward
from quant.config import QuantConfig
from quant.market_data import MarketData
from quant.research.hooks import LossCurve
from quant.research.store import research_symbol

ABLATION_MODELS = (
    "fused",
    "daily_only",
    "intraday_only",
    "fused_unconstrained",
    "lstm",
    "logistic",
    "persistence",
    "always_up",
)
MIN_SAMPLES = 150  # fewer samples with intraday bars than this: no research window


def use_threads(threads: int, seed: int = 0) -> None:
    """torch CPU threads (the shared CI box has 2 cores) and the global seed."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class ResearchData:
    """Raw model inputs of a chronological window: the first ``n_train`` train, the rest test."""

    symbol: str
    daily_source: str
    intraday_symbol: str
    windows: Windows
    labels: np.ndarray
    label_frame: pl.DataFrame  # session, label, label_session (what walk_forward reads)
    n_train: int
    cfg: ForecastConfig
    note: str

    @property
    def sessions(self) -> list[date]:
        return [d.item() for d in self.windows.sessions]

    @property
    def test_sessions(self) -> list[date]:
        return self.sessions[self.n_train :]


def _latest_run(covered: np.ndarray, wanted: int) -> tuple[int, int]:
    """(end index, length) of the latest run of covered sessions at least ``wanted`` long,
    else of the longest run."""
    run = np.zeros(covered.size, dtype=np.int64)
    for i, c in enumerate(covered):
        run[i] = (run[i - 1] + 1 if i else 1) if c else 0
    ok = np.nonzero(run >= wanted)[0]
    end = int(ok[-1]) if ok.size else int(run.size - 1 - run[::-1].argmax())
    return end, int(min(run[end], wanted))


def _intraday_symbol(con: duckdb.DuckDBPyConnection, preferred: str, fallback: str) -> str:
    has = any(sources(con, preferred, f) for f in ("1m", "5m"))
    return preferred if has else fallback


def load_research_data(
    con: duckdb.DuckDBPyConnection, qc: QuantConfig, *, small: bool, n_train: int | None = None
) -> ResearchData:
    """Windows and labels of the latest stretch of sessions that all have intraday bars."""
    features = qc.forecast.features
    minutes = features.intraday_minutes
    n_train = n_train or (160 if small else 600)
    n_test = 40 if small else 120
    symbol = research_symbol(con, qc)
    isym = _intraday_symbol(con, qc.data.intraday_symbol, symbol)
    market = MarketData.load(con, qc, None, symbol=symbol, intraday_symbol=isym, features=features)
    if market.intraday is None:
        raise ValueError(f"no {minutes}-minute bars of {isym} in the store")
    daily, intraday = market.daily, market.intraday
    cfg = qc.forecast.model_copy(update={"features": market.spec})
    days = daily["session"].to_list()
    covered = np.isin(np.array(days[:-1], "datetime64[D]"), intraday["session"].unique().to_numpy())
    end, n = _latest_run(covered, n_train + n_test)
    if n < MIN_SAMPLES:
        raise ValueError(f"only {n} consecutive sessions with intraday bars of {isym}")
    n_train = n_train if n == n_train + n_test else int(n * 0.8)
    first = end - n + 1
    lo = max(0, first - cfg.features.warmup - 5)
    d = daily.filter(pl.col("session").is_between(days[lo], days[end + 1]))
    i = intraday.filter(pl.col("session").is_between(days[lo], days[end]))
    w = build_windows(d, i, cfg.features, sessions=days[first : end + 1], strict=True)
    lab = next_direction(d, cfg.features.horizon)
    w, y, _ = labelled(w, lab)
    src = str(daily["source"][0])
    note = (
        f"{symbol} daily [{src}] with {isym} {minutes}-minute tokens: {n_train} training and "
        f"{n - n_train} test sessions, {days[first]} to {days[end]}"
        + (" (SYNTHETIC market)" if src == "synthetic" else "")
    )
    return ResearchData(symbol, src, isym, w, y, lab, n_train, cfg, note)


@dataclass(frozen=True)
class TrainedModel:
    name: str
    forecaster: Forecaster  # model, feature spec and the training window's norm
    fit: FitResult
    curve: pl.DataFrame  # epoch, train_loss, val_loss
    test: dict[str, Any]  # directional scores on the test sessions


def train_models_for_research(
    data: ResearchData, *, max_epochs: int | None = None, names: tuple[str, ...] = ("fused", "lstm")
) -> dict[str, TrainedModel]:
    """Fit each model on the training sessions (one loop, seeded) and score the test sessions."""
    idx_tr, idx_te = np.arange(data.n_train), np.arange(data.n_train, len(data.windows))
    norm = fit_norm(data.windows.take(idx_tr))
    tr = apply_norm(data.windows.take(idx_tr), norm)
    ytr, yte = data.labels[idx_tr], data.labels[idx_te]
    out: dict[str, TrainedModel] = {}
    for name in names:
        torch.manual_seed(data.cfg.train.seed)  # initial weights too, not only the batches
        model = build(model_config(name, data.cfg.features, data.cfg.model))
        with LossCurve(model, tr, ytr, data.cfg.train.val_fraction) as curve:
            r = fit(model, tr, ytr, data.cfg.train, max_epochs=max_epochs)
        fc = Forecaster(model, data.cfg.features, norm, name)
        p, _ = fc.predict_windows(data.windows.take(idx_te))
        out[name] = TrainedModel(name, fc, r, curve.frame(), score_directional(yte, p).as_dict())
    return out


def gate_values(trained: TrainedModel, data: ResearchData) -> pl.DataFrame:
    """session, split (train/test), p_up and the gate g of every window of ``data``."""
    p, g = trained.forecaster.predict_windows(data.windows)
    split = ["train"] * data.n_train + ["test"] * (len(data.windows) - data.n_train)
    return pl.DataFrame({"session": data.sessions, "split": split, "p_up": p, "gate": g})


def run_ablation(
    data: ResearchData, *, max_epochs: int | None = None, models: tuple[str, ...] = ABLATION_MODELS
) -> dict[str, Any]:
    """Walk-forward over the test sessions (one retrain block) and its evaluation document."""
    test = data.test_sessions
    res = walk_forward(
        data.windows,
        data.label_frame,
        data.cfg,
        start=test[0],
        end=test[-1],
        models=models,
        retrain_every=len(test),
        max_epochs=max_epochs,
    )
    meta = {"start": str(test[0]), "end": str(test[-1]), "seconds": res.seconds}
    return evaluation_document(res.predictions, res.int8, meta, test[-1])


def ablation_table(doc: dict[str, Any]) -> pl.DataFrame:
    """One row per model of the ablation span: accuracy, its Wilson interval, AUC, losses."""
    rows = []
    for name, r in doc["ablation_period"]["models"].items():
        mc = r.get("mcnemar_p", {})
        rows.append(
            {
                "model": name,
                "n": r["n"],
                **{k: r.get(k) for k in ("accuracy", "ci_low", "ci_high", "p_value", "auc")},
                **{k: r.get(k) for k in ("brier", "log_loss", "gate_mean")},
                "mcnemar_p_vs_persistence": mc.get("persistence"),
                "mcnemar_p_vs_always_up": mc.get("always_up"),
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)
