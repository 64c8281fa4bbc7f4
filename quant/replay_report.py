"""The replay's comparison statistics and its Markdown report.

Every arm is scored on the same sessions with ``models.arms.score_arms``: accuracy with a Wilson
interval, an exact binomial p-value against 50%, log loss and Brier (a hard 0/1 forecaster such
as ``persistence`` or ``always_up`` pays the clipped log loss of a hard forecaster), exact
McNemar tests against every other arm; and here, for every pair, a paired bootstrap (sessions
resampled with replacement, seeded) of the accuracy and log-loss differences with a 95%
percentile interval.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from models.arms import arms_table
from models.metrics import hits

# continual: the production policy; frozen: its first champion; retrain_60, logistic, majority:
# the walk-forward; persistence; always_up: P(up) = 1 on every session.
ARMS = (
    "continual",
    "frozen",
    "retrain_60",
    "logistic",
    "persistence",
    "majority",
    "always_up",
)
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0
_EPS = 1e-12  # probability clip of the log loss (as models.metrics)


def session_log_loss(labels: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-session log loss of P(up) forecasts (clipped like ``score_directional``)."""
    y = labels.astype(float)
    pc = np.clip(p.astype(float), _EPS, 1 - _EPS)
    return -(y * np.log(pc) + (1 - y) * np.log(1 - pc))


def paired_bootstrap(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, float | int]:
    """Accuracy and log-loss difference ``a - b`` on the same sessions, each with a 95%
    percentile interval from ``draws`` resamples of the sessions (the same resamples for both)."""
    y = labels.astype(bool)
    hit = hits(y, a).astype(float) - hits(y, b).astype(float)
    ll = session_log_loss(labels, a) - session_log_loss(labels, b)
    n = int(y.size)
    out: dict[str, float | int] = {"n": n, "draws": draws, "seed": seed}
    if n == 0:
        return out | {k: float("nan") for k in ("accuracy_diff", "log_loss_diff")}
    idx = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    for name, d in (("accuracy", hit), ("log_loss", ll)):
        means = d[idx].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        out |= {f"{name}_diff": float(d.mean()), f"{name}_ci_low": float(lo)}
        out[f"{name}_ci_high"] = float(hi)
    return out


def pairs(
    labels: np.ndarray, preds: dict[str, np.ndarray], models: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``"a vs b"`` -> paired bootstrap and McNemar p, for every pair in arm order."""
    out: dict[str, dict[str, Any]] = {}
    for a, b in combinations(preds, 2):
        pb = paired_bootstrap(labels, preds[a], preds[b])
        out[f"{a} vs {b}"] = {**pb, "mcnemar_p": models[a]["mcnemar_p"][b]}
    return out


def markdown(doc: dict[str, Any]) -> str:
    """The comparison table, the pairs against ``continual`` and the run's figures."""
    m = doc["models"]
    rb = doc.get("reproducible_budget") or {}
    lines = [
        f"# Replay {doc['symbol']} {doc['from']} .. {doc['to']} "
        f"({rb.get('max_steps', '?')} steps per member per day, "
        f"wall cap {doc['budget_s']} s)",
        "",
        arms_table(m),
        "",
        "Paired bootstrap (95% interval) of the difference, first arm minus second:",
        "",
        "| pair | accuracy diff (points) | 95% CI | log-loss diff | 95% CI | McNemar p |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in doc.get("paired_bootstrap", {}).items():
        if not name.startswith(("continual vs", "frozen vs")):
            continue
        lines.append(
            f"| {name} | {100 * r['accuracy_diff']:+.1f} | "
            f"[{100 * r['accuracy_ci_low']:+.1f}, {100 * r['accuracy_ci_high']:+.1f}] | "
            f"{r['log_loss_diff']:+.4f} | [{r['log_loss_ci_low']:+.4f}, "
            f"{r['log_loss_ci_high']:+.4f}] | {r['mcnemar_p']:.3f} |"
        )
    perf = (
        "promotions",
        "reproducible_budget",
        "budget_overshoot_max_s",
        "sessions_per_minute",
        "finetune_samples_per_s_median",
        "pipeline_s_per_day_excl_finetune_median",
        "days_run",
        "days_failed",
        "resumed",
        "total_seconds",
    )
    lines += ["", *(f"- {k}: {doc.get(k)}" for k in perf)]
    return "\n".join(lines) + "\n"
