"""Scoring walk-forward predictions and writing the evaluation report (JSON, Markdown, PNG)."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.factory import ALL_MODELS, BASELINES
from models.metrics import mcnemar_p_value, score_directional

_ATTENTION = ("fused", "daily_only", "intraday_only", "fused_unconstrained")


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def score_models(pred: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Directional scores per model, McNemar p against each baseline (on common sessions)."""
    out: dict[str, dict[str, Any]] = {}
    by_model = {m: pred.filter(pl.col("model") == m).sort("session") for m in ALL_MODELS}
    for m, df in by_model.items():
        if df.is_empty():
            continue
        y, p = df.get_column("label").to_numpy(), df.get_column("p_up").to_numpy()
        rec: dict[str, Any] = score_directional(y, p).as_dict()
        rec["mcnemar_p"] = {}
        for b in BASELINES:
            other = by_model[b]
            if b == m or other.is_empty():
                continue
            j = df.join(other, on="session", suffix="_b")
            ca = (j.get_column("p_up").to_numpy() > 0.5) == (j.get_column("label").to_numpy() > 0)
            cb = (j.get_column("p_up_b").to_numpy() > 0.5) == (j.get_column("label").to_numpy() > 0)
            rec["mcnemar_p"][b] = mcnemar_p_value(ca, cb)
        if m in _ATTENTION:
            intra = df.filter(pl.col("has_intra"))
            rec["gate_mean"] = float(df.get_column("gate").mean())  # type: ignore[arg-type]
            rec["gate_mean_intraday_sessions"] = (
                float(intra.get_column("gate").mean()) if not intra.is_empty() else None  # type: ignore[arg-type]
            )
        rec["intraday_sessions"] = int(df.get_column("has_intra").sum())
        rec["up_share"] = float(np.mean(p > 0.5))  # share of sessions called 'up'
        out[m] = rec
    return out


def int8_summary(int8: pl.DataFrame) -> dict[str, Any]:
    """Accuracy of the fused model before and after dynamic INT8 quantisation (same sessions)."""
    if int8.is_empty():
        return {}
    y = int8.get_column("label").to_numpy()
    a32 = float(np.mean((int8.get_column("p_fp32").to_numpy() > 0.5) == (y > 0)))
    a8 = float(np.mean((int8.get_column("p_int8").to_numpy() > 0.5) == (y > 0)))
    p32, p8 = int8.get_column("p_fp32").to_numpy(), int8.get_column("p_int8").to_numpy()
    diff = np.abs(p32 - p8)
    flipped = (p32 > 0.5) != (p8 > 0.5)
    return {
        "n": int(y.size),
        "accuracy_fp32": a32,
        "accuracy_int8": a8,
        "change_points": 100 * (a8 - a32),
        "max_abs_p_diff": float(diff.max()),
        "mean_abs_p_diff": float(diff.mean()),
        "flipped_calls": int(flipped.sum()),
        "flips_now_right": int((flipped & ((p8 > 0.5) == (y > 0))).sum()),
        "claim_under_1_2_points_lost": bool(100 * (a32 - a8) < 1.2),
    }


def evaluation_document(
    pred: pl.DataFrame, int8: pl.DataFrame, meta: dict[str, Any], ablation_end: date
) -> dict[str, Any]:
    """The content of evaluation.json: full period, the all-intraday span, INT8, verdict."""
    full = score_models(pred)
    span = pred.filter(pl.col("session") <= ablation_end)
    ablation = score_models(span)
    fused = full.get("fused", {})
    beats = {
        b: bool(fused.get("accuracy", 0) > full[b]["accuracy"] and fused["mcnemar_p"][b] < 0.05)
        for b in BASELINES
        if b in full and "mcnemar_p" in fused and b in fused["mcnemar_p"]
    }
    doc = {
        **meta,
        "test_sessions": int(pred.get_column("session").n_unique()),
        "models": full,
        "ablation_period": {
            "start": meta.get("start"),
            "end": str(ablation_end),
            "test_sessions": int(span.get_column("session").n_unique()),
            "models": ablation,
        },
        "int8": int8_summary(int8),
        "fused_beats_baseline_significantly": beats,
    }
    return _clean(doc)


def _row(name: str, r: dict[str, Any]) -> str:
    mc = ", ".join(f"{k} {v:.3f}" for k, v in r.get("mcnemar_p", {}).items())
    gate = r.get("gate_mean_intraday_sessions")
    g = "" if gate is None else f"{r['gate_mean']:.3f} / {gate:.3f}"
    return (
        f"| {name} | {r['n']} | {100 * r['accuracy']:.2f} | [{100 * r['ci_low']:.1f}, "
        f"{100 * r['ci_high']:.1f}] | {r['p_value']:.3f} | {r['balanced_accuracy']:.3f} | "
        f"{(r['auc'] or float('nan')):.3f} | {r['brier']:.4f} | {r['log_loss']:.3f} | {mc} | {g} |"
    )


def table(models: dict[str, dict[str, Any]]) -> str:
    head = (
        "| model | n | acc % | Wilson 95% | binom p | bal. acc | AUC | Brier | log loss | "
        "McNemar p vs baselines | gate mean (all / intraday sessions) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([head, *(_row(k, v) for k, v in models.items())])


def markdown(doc: dict[str, Any]) -> str:
    beats = doc.get("fused_beats_baseline_significantly", {})
    verdict = (
        "The fused model beats every baseline significantly (McNemar p < 0.05)."
        if beats and all(beats.values())
        else "The fused model does NOT beat the baselines significantly: "
        + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in beats.items())
        + ". Treat its accuracy as indistinguishable from theirs."
    )
    i8 = doc.get("int8", {})
    lines = [
        "# Walk-forward evaluation of the CSI 300 next-session direction forecaster",
        "",
        f"Command: `{doc.get('command', '')}`",
        "",
        f"Test sessions {doc.get('start')} → {doc.get('end')}: {doc['test_sessions']}; retrain "
        f"every {doc.get('retrain_every')} sessions; wall time {doc.get('seconds', 0):.0f} s.",
        "",
        f"**Verdict.** {verdict}",
        "",
        "## Full period",
        "",
        table(doc["models"]),
        "",
        f"## Ablation span {doc['ablation_period']['start']} → {doc['ablation_period']['end']} "
        "(every session has intraday bars)",
        "",
        table(doc["ablation_period"]["models"]),
        "",
        "## Dynamic INT8 quantisation of the fused model",
        "",
        f"n = {i8.get('n')}; accuracy fp32 {100 * i8.get('accuracy_fp32', float('nan')):.2f}% "
        f"→ int8 {100 * i8.get('accuracy_int8', float('nan')):.2f}% "
        f"(change {i8.get('change_points', float('nan')):+.2f} points; max |ΔP| "
        f"{i8.get('max_abs_p_diff', float('nan')):.2e}, "
        f"mean {i8.get('mean_abs_p_diff', float('nan')):.2e}; "
        f"{i8.get('flipped_calls')} calls flipped, {i8.get('flips_now_right')} of them now right). "
        "Claim 'under 1.2 points lost': "
        f"{'holds' if i8.get('claim_under_1_2_points_lost') else 'does not hold'}.",
        "",
    ]
    return "\n".join(lines)


def plot_accuracy(pred: pl.DataFrame, path: Path, window: int = 250) -> None:
    """Rolling accuracy (``window`` sessions) of every model over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5))
    window = max(10, min(window, pred.get_column("session").n_unique() // 3))
    for m in ALL_MODELS:
        df = pred.filter(pl.col("model") == m).sort("session")
        if df.height < window:
            continue
        hit = ((df.get_column("p_up") > 0.5).cast(pl.Int8) == df.get_column("label")).cast(
            pl.Float64
        )
        ax.plot(
            df.get_column("session").to_list(), hit.rolling_mean(window).to_list(), label=m, lw=1.0
        )
    ax.axhline(0.5, color="k", lw=0.6, ls="--")
    ax.set_ylabel(f"accuracy, trailing {window} sessions")
    ax.legend(ncol=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(doc: dict[str, Any], pred: pl.DataFrame, out: Path) -> list[Path]:
    """evaluation.json, evaluation.md and accuracy.png under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    j, md, png = out / "evaluation.json", out / "evaluation.md", out / "accuracy.png"
    j.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    md.write_text(markdown(doc), encoding="utf-8")
    plot_accuracy(pred, png)
    return [j, md, png]
