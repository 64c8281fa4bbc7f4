"""``quant evaluate``: walk-forward evaluation of the forecaster and its baselines."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np
import polars as pl
import torch

from models import checkpoint
from models.factory import ALL_MODELS
from models.features import FeatureError, build_windows, spec_for_series
from models.inputs import load_daily, load_intraday
from models.labels import next_direction
from models.report import evaluation_document, write_report
from models.walkforward import walk_forward
from quant.cli._context import AppContext, parse_date, pass_app

log = logging.getLogger(__name__)


def _cross_check(daily: pl.DataFrame, other: pl.DataFrame, horizon: int) -> dict[str, Any]:
    """Agreement of the labels and closes of two daily sources over their common sessions."""
    a = next_direction(daily, horizon).join(next_direction(other, horizon), on="session")
    closes = daily.select("session", "close").join(other.select("session", "close"), on="session")
    rel = ((closes["close"] - closes["close_right"]).abs() / closes["close"]).to_numpy()
    return {
        "common_sessions": a.height,
        "label_agreement": float(np.mean(a["label"].to_numpy() == a["label_right"].to_numpy()))
        if a.height
        else None,
        "max_rel_close_diff": float(rel.max()) if rel.size else None,
    }


def register(group: click.Group) -> None:
    @group.command("evaluate")
    @click.option("--symbol", default=None, help="Daily index (default: config data.symbol).")
    @click.option("--source", default=None, help="Daily source (default: preferred, e.g. wind).")
    @click.option("--cross-check-source", default="eastmoney", show_default=True)
    @click.option("--start", callback=parse_date, default="2015-01-01", show_default=True)
    @click.option(
        "--end", callback=parse_date, default=None, help="Last test session (default: data)."
    )
    @click.option("--retrain-every", type=int, default=None, help="Default: config (60).")
    @click.option("--max-epochs", type=int, default=None, help="Default: config.")
    @click.option("--models", "model_list", default=",".join(ALL_MODELS), show_default=True)
    @click.option("--intraday-symbol", default="IF.CFE", show_default=True)
    @click.option(
        "--intraday-frequency", type=click.Choice(["1m", "5m"]), default="5m", show_default=True
    )
    @click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads")
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
    @click.option("--progress/--no-progress", default=False)
    @pass_app
    def evaluate(
        app: AppContext,
        symbol: str | None,
        source: str | None,
        cross_check_source: str,
        start: date,
        end: date | None,
        retrain_every: int | None,
        max_epochs: int | None,
        model_list: str,
        intraday_symbol: str,
        intraday_frequency: str,
        threads: int,
        out: Path,
        progress: bool,
    ) -> None:
        """Walk-forward evaluation; writes OUT/evaluation.json and OUT/predictions.parquet."""
        models = tuple(m.strip() for m in model_list.split(",") if m.strip())
        unknown = sorted(set(models) - set(ALL_MODELS))
        if unknown:
            raise click.BadParameter(f"unknown models {unknown}; known: {ALL_MODELS}")
        torch.set_num_threads(threads)
        cfg = app.config.forecast
        minutes = int(intraday_frequency.rstrip("m"))
        cfg = cfg.model_copy(
            update={"features": cfg.features.model_copy(update={"intraday_minutes": minutes})}
        )
        sym = symbol or app.config.data.symbol
        con = app.connect(read_only=True)
        try:
            daily = load_daily(con, sym, source=source, end=end)
            intraday = load_intraday(con, intraday_symbol, minutes, end=end)
            try:
                other = load_daily(con, sym, source=cross_check_source, end=end)
            except LookupError:
                other = None
        finally:
            con.close()
        src = daily.get_column("source")[0]
        # One policy for a series without turnover (docs/forecaster.md): drop amount_z.
        cfg = cfg.model_copy(update={"features": spec_for_series(daily, cfg.features)})
        click.echo(
            f"daily {sym} [{src}]: {daily.height} sessions; intraday {intraday_symbol} "
            f"{intraday_frequency}: {intraday.height} bars",
            err=True,
        )
        windows = build_windows(daily, intraday, cfg.features)
        if len(windows) == 0:
            raise FeatureError(
                f"too little history: {daily.height} daily sessions of {sym} give no complete "
                f"window (the features need {cfg.features.warmup} consecutive sessions)"
            )
        labels = next_direction(daily, cfg.features.horizon)
        res = walk_forward(
            windows,
            labels,
            cfg,
            start=start,
            end=end,
            models=models,
            retrain_every=retrain_every,
            max_epochs=max_epochs,
            progress=progress,
        )
        out.mkdir(parents=True, exist_ok=True)
        pred = res.predictions.sort("session", "model")
        pred.write_parquet(out / "predictions.parquet")
        if not res.int8.is_empty():
            res.int8.write_parquet(out / "int8_predictions.parquet")
        meta: dict[str, Any] = {
            "command": "quant " + shlex.join(sys.argv[1:]),
            "created_at": datetime.now().astimezone().isoformat(),
            "symbol": sym,
            "daily_source": src,
            "intraday_symbol": intraday_symbol,
            "intraday_frequency": intraday_frequency,
            "start": str(start),
            "end": str(pred.get_column("session").max()),
            "retrain_every": retrain_every or cfg.evaluation.retrain_every,
            "max_epochs": max_epochs,
            "seconds": res.seconds,
            "config": json.loads(cfg.model_dump_json()),
        }
        if other is not None:
            meta["cross_check"] = {
                "source": cross_check_source,
                **_cross_check(daily, other, cfg.features.horizon),
            }
        ablation_end = date.fromisoformat(cfg.evaluation.ablation_end)
        doc = evaluation_document(pred, res.int8, meta, ablation_end)
        doc["fits"] = res.fits
        paths = write_report(doc, pred, out)
        for name, fc in res.final.items():
            checkpoint.save(out / "checkpoints" / f"{name}.pt", fc.checkpoint())
        click.echo(
            f"wrote {out / 'predictions.parquet'} and {', '.join(map(str, paths))}", err=True
        )
        for name, r in doc["models"].items():
            click.echo(
                f"{name:>20}: n={r['n']:5d} acc={100 * r['accuracy']:.2f}% "
                f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] "
                f"p={r['p_value']:.3f}"
            )
