"""Report outputs: ``metrics.json`` (every figure), PNG plots and a self-contained HTML page."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from backtest.plots import write_plots
from backtest.run import BacktestResult
from backtest.sweep import SweepResult
from backtest.trading import TRADING_KEYS

_SCORE_KEYS = ("n", "accuracy", "ci_low", "ci_high", "p_value")


def config_hash(r: BacktestResult) -> str:
    """SHA-256 of the effective configuration (instrument included), canonical JSON."""
    doc = {"backtest": r.config.model_dump(mode="json"), "instrument": r.instrument}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _clean(x: Any) -> Any:
    """JSON-safe: numpy to Python, NaN/inf to null, dates to ISO strings."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_clean(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        return _clean(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "isoformat"):
        return x.isoformat()
    return x


def metrics_document(
    r: BacktestResult, sweep: SweepResult | None = None, *, symbol: str = "000300.SH"
) -> dict[str, Any]:
    """Every figure of the run as one JSON-ready document (top-level keys are the headline)."""
    acc = {k: v for k, v in r.accuracy.items() if k not in ("correct", "rolling_accuracy")}
    model = acc["model"]
    doc: dict[str, Any] = {
        "proxy_note": r.proxy_note,
        "model": r.model,
        "symbol": symbol,
        "instrument": r.instrument,
        "instrument_profile": r.profile.model_dump(mode="json"),
        "config_hash": config_hash(r),
        "created_at": datetime.now(UTC).isoformat(),
        "data_range": {"first_session": r.sessions[0], "last_session": r.sessions[-1]},
        "n_sessions": model["n"],
        "accuracy": model["accuracy"],
        "ci_low": model["ci_low"],
        "ci_high": model["ci_high"],
        "p_value": model["p_value"],
        "baselines": {k: v["accuracy"] for k, v in acc["baselines"].items()},
        "mcnemar_p_values": {k: v["mcnemar_p_value_vs_model"] for k, v in acc["baselines"].items()},
        **{k: r.trading[k] for k in r.trading},
        "buy_and_hold_return": r.buy_and_hold["total_return"],
        "buy_and_hold": r.buy_and_hold,
        "accuracy_detail": acc,
        "equity_sessions": len(r.sessions),
        "cost_passes": r.passes,
        "rolling_accuracy": {
            "sessions": r.accuracy_sessions,
            "values": r.accuracy["rolling_accuracy"],
        },
    }
    if sweep is not None:
        doc["sweep"] = {
            "n_variants": sweep.n_variants,
            "warning": sweep.warning,
            "rows": sweep.table.to_dicts(),
        }
    return _clean(doc)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _accuracy_tables(doc: dict[str, Any]) -> str:
    d = doc["accuracy_detail"]
    head = ["predictor", "n", "accuracy", "CI 95% low", "CI 95% high", "p vs 50%", "McNemar p"]
    rows = [["model: " + doc["model"], *[d["model"][k] for k in _SCORE_KEYS], "-"]]
    for name, b in d["baselines"].items():
        rows.append([name, *[b[k] for k in _SCORE_KEYS], b["mcnemar_p_value_vs_model"]])
    years = sorted(d["per_year"])
    per_year = [
        [y, d["per_year"][y]["n"], d["per_year"][y]["accuracy"]]
        + [b["per_year"][y]["accuracy"] for b in d["baselines"].values()]
        for y in years
    ]
    c = d["confusion"]
    splits = [
        [k, v["n"], v["accuracy"], v["ci_low"], v["ci_high"]]
        for k, v in {**d["by_direction"], **d["by_regime"]}.items()
    ]
    return (
        "<h2>Directional accuracy</h2>"
        + _table(head, rows)
        + "<h3>Confusion matrix (rows: actual, columns: called)</h3>"
        + _table(
            ["", "called up", "called down"],
            [
                ["actual up", c["up_up"], c["up_down"]],
                ["actual down", c["down_up"], c["down_down"]],
            ],
        )
        + "<h3>Up and down sessions, up and down markets</h3>"
        + _table(["subset", "n", "accuracy", "CI low", "CI high"], splits)
        + "<h3>Per year</h3>"
        + _table(["year", "n", "model", *d["baselines"].keys()], per_year)
    )


def _trading_table(doc: dict[str, Any]) -> str:
    bh = doc["buy_and_hold"]
    rows = [[k, doc.get(k), bh.get(k, "-") if k in bh else "-"] for k in TRADING_KEYS]
    return "<h2>Trading figures</h2>" + _table(["figure", "strategy", "index buy-and-hold"], rows)


def _sweep_html(doc: dict[str, Any]) -> str:
    s = doc.get("sweep")
    if not s:
        return ""
    cols = [
        "threshold",
        "cost_multiplier",
        "lag",
        "total_return",
        "sharpe",
        "max_drawdown",
        "orders",
        "chosen",
        "best_sharpe",
    ]
    rows = [[row[c] for c in cols] for row in s["rows"]]
    return (
        f"<h2>Parameter sweep ({s['n_variants']} variants)</h2>"
        f"<p class='warn'>{html.escape(s['warning'])}</p>" + _table(cols, rows)
    )


def render_html(doc: dict[str, Any], images: dict[str, Path]) -> str:
    """The report page; images are embedded (base64) so the file stands alone."""
    imgs = "".join(
        f"<figure><img alt='{name}' src='data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}'><figcaption>{name}</figcaption></figure>"
        for name, path in images.items()
    )
    dr = doc["data_range"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Backtest: {html.escape(doc["model"])} on {html.escape(doc["instrument"])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
.warn {{ background: #fff3cd; padding: 0.6em; border: 1px solid #e0c060; }}
img {{ max-width: 100%; }} figure {{ margin: 1em 0; }}
</style></head><body>
<h1>Backtest of {html.escape(doc["model"])}: {html.escape(doc["symbol"])} as
{html.escape(doc["instrument"])} proxy</h1>
<p class="warn">{html.escape(doc["proxy_note"])}</p>
<p>Sessions {dr["first_session"]} to {dr["last_session"]}; config hash
<code>{doc["config_hash"][:16]}</code>; created {doc["created_at"]}.</p>
{_accuracy_tables(doc)}
{_trading_table(doc)}
{imgs}
{_sweep_html(doc)}
</body></html>
"""


def write_report(
    r: BacktestResult, out_dir: Path, sweep: SweepResult | None = None, *, symbol: str
) -> dict[str, Any]:
    """Write ``metrics.json``, the PNG plots and ``report.html`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = metrics_document(r, sweep, symbol=symbol)
    (out_dir / "metrics.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    images = write_plots(r, out_dir)
    (out_dir / "report.html").write_text(render_html(doc, images), encoding="utf-8")
    return doc
