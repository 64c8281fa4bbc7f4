"""Walk-forward evaluation: expanding training window, retrain every N sessions, test after it.

At the first session t0 of each test block the models are refitted on every sample whose label
is already settled at t0's close (``label_session <= t0``), with normalisation statistics fitted
on those samples only; they then forecast the sessions t0 .. t0+N-1.  Every model sees the same
windows and splits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl
from torch import Tensor

from models.baselines import always_up, persistence
from models.config import ForecastConfig
from models.export import quantize_int8
from models.factory import TORCH_MODELS, build, model_config
from models.features import Windows
from models.forecaster import Forecaster
from models.logistic import fit_logistic
from models.normalise import apply_norm, fit_norm
from models.train import fit, predict

log = logging.getLogger(__name__)

MIN_TRAIN = 100  # fewer labelled samples than this: the block is not forecast by that model


@dataclass(frozen=True)
class WalkForwardResult:
    predictions: pl.DataFrame  # session, model, p_up, label, gate, has_intra
    int8: pl.DataFrame  # session, p_fp32, p_int8, label (the fused model, quantised per block)
    fits: list[dict[str, object]]  # one record per (block, torch model)
    final: dict[str, Forecaster] = field(default_factory=dict)  # last block's torch models
    seconds: float = 0.0


def _frame(name: str, w: Windows, y: np.ndarray, p: np.ndarray, g: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "session": w.sessions.astype("datetime64[D]"),
            "model": [name] * len(w),
            "p_up": p.astype(np.float64),
            "label": y.astype(np.int8),
            "gate": g.astype(np.float64),
            "has_intra": w.has_intra,
        }
    )


def walk_forward(
    windows: Windows,
    labels: pl.DataFrame,
    cfg: ForecastConfig,
    *,
    start: date,
    end: date | None = None,
    models: tuple[str, ...],
    retrain_every: int | None = None,
    max_epochs: int | None = None,
    progress: bool = False,
) -> WalkForwardResult:
    """Forecast every labelled session in ``[start, end]`` with each of ``models``.

    ``windows`` are the raw (un-normalised) inputs of all sessions; ``labels`` comes from
    ``models.labels.next_direction`` (columns session, label, label_session).
    """
    t_start = time.perf_counter()
    lab = pl.DataFrame({"session": windows.sessions.astype("datetime64[D]")}).join(
        labels, on="session", how="inner", maintain_order="left"
    )
    keep = np.isin(windows.sessions, lab.get_column("session").to_numpy())
    w = windows.take(np.nonzero(keep)[0])
    y = lab.get_column("label").to_numpy().astype(np.int64)
    settled = lab.get_column("label_session").to_numpy().astype("datetime64[D]")
    sess = w.sessions.astype("datetime64[D]")
    lo = np.datetime64(start, "D")
    hi = np.datetime64(end, "D") if end is not None else sess.max()
    test_idx = np.nonzero((sess >= lo) & (sess <= hi))[0]
    if test_idx.size == 0:
        raise ValueError(f"no labelled sessions with full windows in [{start}, {end}]")
    every = retrain_every or cfg.evaluation.retrain_every
    ev, ts = cfg.evaluation, cfg.train

    frames: list[pl.DataFrame] = []
    int8_frames: list[pl.DataFrame] = []
    fits: list[dict[str, object]] = []
    states: dict[str, dict[str, Tensor]] = {}
    final: dict[str, Forecaster] = {}
    blocks = [test_idx[i : i + every] for i in range(0, test_idx.size, every)]
    for b, block in enumerate(blocks):
        t0 = sess[block[0]]
        train_idx = np.nonzero(settled <= t0)[0]
        if train_idx.size < MIN_TRAIN:
            log.warning("block %s: only %d training samples, skipped", t0, train_idx.size)
            continue
        norm = fit_norm(w.take(train_idx))
        tr, te = apply_norm(w.take(train_idx), norm), apply_norm(w.take(block), norm)
        ytr, yte = y[train_idx], y[block]
        raw_te = w.take(block)
        for name in models:
            if name == "always_up":
                frames.append(_frame(name, te, yte, always_up(ytr, te), np.zeros(len(te))))
            elif name == "persistence":
                frames.append(_frame(name, te, yte, persistence(raw_te), np.zeros(len(te))))
            elif name == "logistic":
                lm = fit_logistic(
                    w.take(train_idx), ytr, norm, lags=ev.logistic_lags, c=ev.logistic_c
                )
                frames.append(_frame(name, te, yte, lm.predict(raw_te), np.zeros(len(te))))
            elif name in TORCH_MODELS:
                sub_tr, sub_y, sub_te, sub_yte = tr, ytr, te, yte
                if name == "intraday_only":  # trained and tested where intraday bars exist
                    sub_tr, sub_y = tr.take(np.nonzero(tr.has_intra)[0]), ytr[tr.has_intra]
                    sub_te, sub_yte = te.take(np.nonzero(te.has_intra)[0]), yte[te.has_intra]
                    if len(sub_tr) < MIN_TRAIN or len(sub_te) == 0:
                        continue
                model = build(model_config(name, cfg.features, cfg.model), seed=ts.seed)
                warm = ev.warm_start and name in states
                r = fit(
                    model,
                    sub_tr,
                    sub_y,
                    ts,
                    init_state=states.get(name) if warm else None,
                    progress=progress,
                    max_epochs=min(ev.warm_epochs, max_epochs or ev.warm_epochs)
                    if warm
                    else max_epochs,
                )
                states[name] = {k: v.clone() for k, v in model.state_dict().items()}
                p, g = predict(model, sub_te)
                frames.append(_frame(name, sub_te, sub_yte, p, g))
                fits.append(
                    {
                        "block": str(t0),
                        "model": name,
                        "n_train": len(sub_tr),
                        "epochs": r.epochs,
                        "best_epoch": r.best_epoch,
                        "stopped": r.stopped,
                        "seconds": round(r.seconds, 3),
                        "samples_per_s": round(r.samples_seen / max(r.seconds, 1e-9)),
                    }
                )
                final[name] = Forecaster(
                    model, cfg.features, norm, name, {"trained_through": str(sess[train_idx[-1]])}
                )
                if name == "fused":
                    q8, _ = predict(quantize_int8(model), sub_te)
                    int8_frames.append(
                        pl.DataFrame(
                            {
                                "session": sub_te.sessions.astype("datetime64[D]"),
                                "p_fp32": p,
                                "p_int8": q8,
                                "label": sub_yte.astype(np.int8),
                            }
                        )
                    )
            else:
                raise ValueError(f"unknown model {name!r}")
        log.info(
            "block %d/%d from %s: %d train, %d test sessions, %.0fs elapsed",
            b + 1,
            len(blocks),
            t0,
            train_idx.size,
            block.size,
            time.perf_counter() - t_start,
        )
    return WalkForwardResult(
        predictions=pl.concat(frames) if frames else pl.DataFrame(),
        int8=pl.concat(int8_frames) if int8_frames else pl.DataFrame(),
        fits=fits,
        final=final,
        seconds=time.perf_counter() - t_start,
    )
