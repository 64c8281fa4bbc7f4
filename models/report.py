"""Scoring walk-forward predictions and writing the evaluation report (JSON, Markdown, PNG)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.arms import arm_arrays, arms_table, score_arms
from models.factory import ABLATIONS, ALL_MODELS, BASELINES
from models.metrics import calls_up, hits, log_loss, mcnemar_p_value

_ATTENTION = ("fused", *ABLATIONS)
SUBPERIODS = {
    "2015-2016": (date(2015, 1, 1), date(2016, 12, 31)),
    "2017-2018": (date(2017, 1, 1), date(2018, 12, 31)),
    "2019-2020": (date(2019, 1, 1), date(2020, 12, 31)),
    "2021-2022": (date(2021, 1, 1), date(2022, 12, 31)),
    "2023-2025": (date(2023, 1, 1), date(2025, 12, 31)),
}


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def correct(df: pl.DataFrame) -> np.ndarray:
    """Whether each row's call (``models.metrics.calls_up``) was right."""
    return hits(df.get_column("label").to_numpy(), df.get_column("p_up").to_numpy())


def mcnemar(a: pl.DataFrame, b: pl.DataFrame) -> float:
    """McNemar p of two models' calls on their common sessions."""
    j = a.join(b, on="session", suffix="_b")
    cb = hits(j.get_column("label").to_numpy(), j.get_column("p_up_b").to_numpy())
    return mcnemar_p_value(correct(j), cb)


def seed_spread(seeds: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per model: min / median / max accuracy and log loss over its single seeded fits."""
    out: dict[str, dict[str, float]] = {}
    if seeds.is_empty():
        return out
    for (m,), g in seeds.group_by("model"):
        acc, ll = [], []
        for _, gs in g.group_by("seed"):
            acc.append(float(np.mean(correct(gs))))
            ll.append(log_loss(gs.get_column("label").to_numpy(), gs.get_column("p_up").to_numpy()))
        out[str(m)] = {
            "seeds": len(acc),
            "accuracy_min": min(acc),
            "accuracy_median": float(np.median(acc)),
            "accuracy_max": max(acc),
            "log_loss_min": min(ll),
            "log_loss_median": float(np.median(ll)),
            "log_loss_max": max(ll),
        }
    return out


def subperiods(pred: pl.DataFrame) -> dict[str, dict[str, dict[str, Any]]]:
    """n, accuracy and log loss of every model in each two-year sub-period."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, (lo, hi) in SUBPERIODS.items():
        span = pred.filter((pl.col("session") >= lo) & (pl.col("session") <= hi))
        out[name] = {}
        for (m,), g in span.group_by("model"):
            y, p = g.get_column("label").to_numpy(), g.get_column("p_up").to_numpy()
            out[name][str(m)] = {
                "n": int(g.height),
                "accuracy": float(np.mean(correct(g))),
                "log_loss": log_loss(y, p),
            }
    return out


def reliability(pred: pl.DataFrame, bins: int = 10) -> dict[str, list[dict[str, float]]]:
    """Per model: mean forecast and realised up share in equal-count bins of P(up)."""
    out: dict[str, list[dict[str, float]]] = {}
    for (m,), g in pred.group_by("model"):
        p, y = g.get_column("p_up").to_numpy(), g.get_column("label").to_numpy()
        if np.unique(p).size < 3:  # hard or constant forecasters have no curve
            continue
        order = np.argsort(p, kind="stable")
        out[str(m)] = [
            {"p_mean": float(p[i].mean()), "up_share": float(y[i].mean()), "n": int(i.size)}
            for i in np.array_split(order, bins)
            if i.size
        ]
    return out


def score_models(pred: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Directional scores per model (``models.arms.score_arms``: McNemar p against each baseline
    on common sessions), with the gate and intraday figures of the walk-forward."""
    if pred.is_empty():
        return {}
    labels, preds = arm_arrays(pred, ALL_MODELS)
    out = score_arms(labels, preds, against=BASELINES)
    for m, rec in out.items():
        df = pred.filter(pl.col("model") == m)
        p = df.get_column("p_up").to_numpy()
        if m in _ATTENTION:
            intra = df.filter(pl.col("has_intra"))
            rec["gate_mean"] = float(df.get_column("gate").mean())  # type: ignore[arg-type]
            rec["gate_mean_intraday_sessions"] = (
                float(intra.get_column("gate").mean()) if not intra.is_empty() else None  # type: ignore[arg-type]
            )
        rec["intraday_sessions"] = int(df.get_column("has_intra").sum())
        rec["up_share"] = float(np.mean(calls_up(p)))  # share of sessions called 'up'
    return out


def int8_summary(int8: pl.DataFrame) -> dict[str, Any]:
    """Accuracy of the fused model before and after dynamic INT8 quantisation (same sessions)."""
    if int8.is_empty():
        return {}
    y = int8.get_column("label").to_numpy()
    p32, p8 = int8.get_column("p_fp32").to_numpy(), int8.get_column("p_int8").to_numpy()
    a32, a8 = float(np.mean(hits(y, p32))), float(np.mean(hits(y, p8)))
    diff = np.abs(p32 - p8)
    flipped = calls_up(p32) != calls_up(p8)
    return {
        "n": int(y.size),
        "accuracy_fp32": a32,
        "accuracy_int8": a8,
        "change_points": 100 * (a8 - a32),
        "max_abs_p_diff": float(diff.max()),
        "mean_abs_p_diff": float(diff.mean()),
        "flipped_calls": int(flipped.sum()),
        "flips_now_right": int((flipped & hits(y, p8)).sum()),
        "claim_under_1_2_points_lost": bool(100 * (a32 - a8) < 1.2),
    }


def _acceptance(full: dict[str, Any], subs: dict[str, Any]) -> dict[str, Any]:
    """The forecaster's bar: at least the logistic (accuracy and log loss), within half a
    point of the LSTM, and never more than 2 points below the logistic in a sub-period."""
    f, lg, ls = full.get("fused"), full.get("logistic"), full.get("lstm")
    if f is None or lg is None:
        return {}
    out: dict[str, Any] = {
        "fused_accuracy_ge_logistic": f["accuracy"] >= lg["accuracy"],
        "fused_log_loss_le_logistic": f["log_loss"] <= lg["log_loss"],
    }
    if ls is not None:
        out["fused_accuracy_ge_lstm_minus_0_5"] = f["accuracy"] >= ls["accuracy"] - 0.005
    gaps = {
        k: v["fused"]["accuracy"] - v["logistic"]["accuracy"]
        for k, v in subs.items()
        if "fused" in v and "logistic" in v and v["fused"]["n"]
    }
    out["subperiod_gap_to_logistic_points"] = {k: 100 * g for k, g in gaps.items()}
    out["fused_within_2_points_of_logistic_every_subperiod"] = all(
        g >= -0.02 for g in gaps.values()
    )
    return out


def verdict(full: dict[str, Any]) -> str:
    """One plain sentence on the forecaster against its baselines."""
    f = full.get("fused")
    if f is None:
        return "The fused model was not evaluated."
    parts = []
    for b in ("logistic", "lstm", "majority", "always_up", "persistence"):
        r = full.get(b)
        if r is None:
            continue
        p = f["mcnemar_p"].get(b, float("nan"))
        rel = "above" if f["accuracy"] > r["accuracy"] else "not above"
        parts.append(f"{rel} {b} {100 * r['accuracy']:.2f}% (McNemar p {p:.3f})")
    sig = [
        b
        for b in BASELINES
        if b in full and f["mcnemar_p"].get(b, 1.0) < 0.05 and f["accuracy"] > full[b]["accuracy"]
    ]
    tail = (
        f"it beats {', '.join(sig)} significantly and no other baseline"
        if sig
        else "it beats no baseline significantly: its edge is indistinguishable from chance"
    )
    return (
        f"The fused forecaster calls {100 * f['accuracy']:.2f}% of sessions right "
        f"(log loss {f['log_loss']:.4f}): " + "; ".join(parts) + f"; {tail}."
    )


def evaluation_document(
    pred: pl.DataFrame,
    int8: pl.DataFrame,
    meta: dict[str, Any],
    ablation_end: date,
    *,
    seeds: pl.DataFrame | None = None,
    selection: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The content of evaluation.json: full period with seed spreads, sub-periods, the
    all-intraday span, calibration, INT8, the chosen hyperparameters, verdict."""
    full = score_models(pred)
    spread = seed_spread(seeds if seeds is not None else pl.DataFrame())
    for m, sp in spread.items():
        if m in full:
            full[m]["seed_spread"] = sp
    span = pred.filter(pl.col("session") <= ablation_end)
    ablation = score_models(span)
    by = {m: span.filter(pl.col("model") == m) for m in ("fused", "daily_only")}
    gate = by["fused"].filter(pl.col("has_intra")).get_column("gate").to_numpy()
    fused = full.get("fused", {})
    beats = {
        b: bool(fused.get("accuracy", 0) > full[b]["accuracy"] and fused["mcnemar_p"][b] < 0.05)
        for b in BASELINES
        if b in full and "mcnemar_p" in fused and b in fused["mcnemar_p"]
    }
    subs = subperiods(pred)
    doc = {
        **meta,
        "test_sessions": int(pred.get_column("session").n_unique()),
        "models": full,
        "subperiods": subs,
        "ablation_period": {
            "start": meta.get("start"),
            "end": str(ablation_end),
            "test_sessions": int(span.get_column("session").n_unique()),
            "models": ablation,
            "fused_vs_daily_only_mcnemar_p": mcnemar(by["fused"], by["daily_only"])
            if not by["fused"].is_empty() and not by["daily_only"].is_empty()
            else None,
            "gate_quantiles": {
                f"q{q}": float(np.quantile(gate, q / 100)) for q in (5, 25, 50, 75, 95)
            }
            if gate.size
            else {},
        },
        "calibration": reliability(pred),
        "int8": int8_summary(int8),
        "selection": selection or [],
        "fused_beats_baseline_significantly": beats,
        "acceptance": _acceptance(full, subs),
        "verdict": verdict(full),
    }
    return _clean(doc)


def _gate_cell(r: Mapping[str, Any]) -> str:
    gate = r.get("gate_mean_intraday_sessions")
    return "" if gate is None else f"{r['gate_mean']:.3f} / {gate:.3f}"


def table(models: dict[str, dict[str, Any]]) -> str:
    """The models' table (``models.arms.arms_table``) with the gate column."""
    return arms_table(models, extra={"gate mean (all / intraday sessions)": _gate_cell})


def _spread_table(models: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| model | seeds | acc min / median / max % | log loss min / median / max |",
        "|---|---|---|---|",
    ]
    for m, r in models.items():
        sp = r.get("seed_spread")
        if sp:
            rows.append(
                f"| {m} | {sp['seeds']} | {100 * sp['accuracy_min']:.2f} / "
                f"{100 * sp['accuracy_median']:.2f} / {100 * sp['accuracy_max']:.2f} | "
                f"{sp['log_loss_min']:.4f} / {sp['log_loss_median']:.4f} / "
                f"{sp['log_loss_max']:.4f} |"
            )
    return "\n".join(rows)


def _subperiod_table(subs: dict[str, dict[str, dict[str, Any]]]) -> str:
    models = [m for m in ALL_MODELS if any(m in v for v in subs.values())]
    rows = ["| period | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for k, v in subs.items():
        cells = [
            f"{100 * v[m]['accuracy']:.1f} ({v[m]['n']})" if m in v and v[m]["n"] else "–"
            for m in models
        ]
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _selection_table(sel: list[dict[str, Any]]) -> str:
    rows = ["| block | logistic lags, C | fused candidate (val LL) | lstm candidate (val LL) |"]
    rows.append("|---|---|---|---|")
    for r in sel:
        lg = r.get("logistic", {})
        cells = [f"{lg.get('lags')}, {lg.get('c')}"]
        for f in ("fused", "lstm"):
            x = r.get(f)
            cells.append(
                f"{x['candidate']} ({x['val_log_loss']:.4f}, T {x['temperature']:.2f})"
                if x
                else "–"
            )
        rows.append(f"| {r['block']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def markdown(doc: dict[str, Any]) -> str:
    i8 = doc.get("int8", {})
    ab = doc["ablation_period"]
    acc = doc.get("acceptance", {})
    lines = [
        "# Walk-forward evaluation of the CSI 300 next-session direction forecaster",
        "",
        f"Command: `{doc.get('command', '')}`",
        "",
        f"Test sessions {doc.get('start')} → {doc.get('end')}: {doc['test_sessions']}; retrain "
        f"and re-select every {doc.get('retrain_every')} sessions; {doc.get('seeds')} seeds per "
        f"neural model; wall time {doc.get('wall_seconds', 0):.0f} s.",
        "",
        f"**Verdict.** {doc.get('verdict', '')}",
        "",
        "## Full period (ensembles)",
        "",
        table(doc["models"]),
        "",
        "## Single-seed spread",
        "",
        _spread_table(doc["models"]),
        "",
        "## Two-year sub-periods (accuracy %, n)",
        "",
        _subperiod_table(doc.get("subperiods", {})),
        "",
        f"## Ablation span {ab['start']} → {ab['end']} (every session has intraday bars)",
        "",
        table(ab["models"]),
        "",
        f"fused vs daily_only: McNemar p {ab.get('fused_vs_daily_only_mcnemar_p')}; gate on "
        f"intraday sessions (quantiles): {ab.get('gate_quantiles')}.",
        "",
        "## Acceptance figures",
        "",
        "\n".join(f"- {k}: {v}" for k, v in acc.items()),
        "",
        "## Hyperparameters chosen on inner validation (per block)",
        "",
        _selection_table(doc.get("selection", [])),
        "",
        "## Dynamic INT8 quantisation of the fused model",
        "",
        f"n = {i8.get('n')}; accuracy fp32 {100 * i8.get('accuracy_fp32', float('nan')):.2f}% "
        f"→ int8 {100 * i8.get('accuracy_int8', float('nan')):.2f}% "
        f"(change {i8.get('change_points', float('nan')):+.2f} points; "
        f"{i8.get('flipped_calls')} calls flipped). Claim 'under 1.2 points lost': "
        f"{'holds' if i8.get('claim_under_1_2_points_lost') else 'does not hold'}.",
        "",
    ]
    return "\n".join(lines)


def write_report(doc: dict[str, Any], pred: pl.DataFrame, out: Path) -> list[Path]:
    """evaluation.json, evaluation.md and the plots under ``out``."""
    from models.report_plots import plot_accuracy, plot_gate, plot_reliability

    out.mkdir(parents=True, exist_ok=True)
    j, md = out / "evaluation.json", out / "evaluation.md"
    j.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    md.write_text(markdown(doc), encoding="utf-8")
    pngs = [out / "accuracy.png", out / "reliability.png", out / "gate.png"]
    plot_accuracy(pred, pngs[0])
    plot_reliability(doc.get("calibration", {}), pngs[1])
    plot_gate(pred, pngs[2], date.fromisoformat(doc["ablation_period"]["end"]))
    return [j, md, *pngs]
