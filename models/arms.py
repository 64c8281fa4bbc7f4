"""Scoring forecasters ("arms") on labelled sessions, and the one Markdown table of the scores.

The walk-forward report (``models.report``), the replay (``quant.replay_report``) and the
fine-tune search score their arms with ``score_arms``: for each arm the directional figures of
``models.metrics.score_directional`` on the sessions it forecast, and the exact McNemar p against
each other arm on the sessions both forecast.  ``arms_table`` renders them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from models.metrics import hits, mcnemar_p_value, score_directional


def score_arms(
    labels: np.ndarray,
    preds: Mapping[str, np.ndarray],
    *,
    against: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Scores of every arm of ``preds`` (P(up) per session, aligned with ``labels``; NaN where
    the arm made no forecast), with ``mcnemar_p`` against each arm of ``against`` (default:
    every other arm) on the sessions both forecast."""
    y = np.asarray(labels)
    made = {k: ~np.isnan(np.asarray(p, dtype=float)) for k, p in preds.items()}
    right = {k: hits(y, np.nan_to_num(np.asarray(p, dtype=float))) for k, p in preds.items()}
    others = list(preds) if against is None else [a for a in against if a in preds]
    out: dict[str, dict[str, Any]] = {}
    for k, p in preds.items():
        m = made[k]
        rec: dict[str, Any] = score_directional(y[m], np.asarray(p, dtype=float)[m]).as_dict()
        rec["mcnemar_p"] = {
            o: mcnemar_p_value(right[k][m & made[o]], right[o][m & made[o]])
            for o in others
            if o != k
        }
        out[k] = rec
    return out


def arm_arrays(pred: pl.DataFrame, arms: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A long prediction frame (session, model, p_up, label) as ``score_arms`` input: the label
    of every session and each arm's P(up) on them (NaN where it made none); arms without any
    prediction are left out."""
    days = pred.select("session", "label").unique("session").sort("session")
    out: dict[str, np.ndarray] = {}
    for a in arms:
        g = pred.filter(pl.col("model") == a).select("session", "p_up")
        if g.is_empty():
            continue
        p = days.join(g, on="session", how="left", maintain_order="left").get_column("p_up")
        out[a] = p.cast(pl.Float64).fill_null(float("nan")).to_numpy()
    return days.get_column("label").to_numpy(), out


def arms_table(
    models: Mapping[str, Mapping[str, Any]],
    *,
    extra: Mapping[str, Callable[[Mapping[str, Any]], str]] | None = None,
) -> str:
    """One row per arm: n, accuracy with its Wilson interval, binomial p, balanced accuracy,
    AUC, Brier, log loss, one McNemar column per compared arm, then the ``extra`` columns."""
    vs: list[str] = []
    for r in models.values():
        vs += [o for o in r.get("mcnemar_p", {}) if o not in vs]
    more = dict(extra or {})
    head = [
        "model",
        "n",
        "acc %",
        "Wilson 95%",
        "binom p",
        "bal. acc",
        "AUC",
        "Brier",
        "log loss",
        *(f"McNemar p vs {o}" for o in vs),
        *more,
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, r in models.items():
        mc = r.get("mcnemar_p", {})
        cells = [
            k,
            str(r["n"]),
            f"{100 * r['accuracy']:.2f}",
            f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]",
            f"{r['p_value']:.3f}",
            _num(r.get("balanced_accuracy"), 3),
            _num(r.get("auc"), 3),
            _num(r.get("brier"), 4),
            _num(r.get("log_loss"), 4),
            *(f"{mc[o]:.3f}" if o in mc and mc[o] is not None else "-" for o in vs),
            *(f(r) for f in more.values()),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _num(x: Any, digits: int) -> str:
    return "–" if x is None else f"{float(x):.{digits}f}"
