"""``quant evaluate``: walk-forward evaluation of the forecaster and its baselines.

A thin wrapper over ``models.evaluation.evaluate``: every option left out means "what the
configuration says" (``forecast.evaluation``, ``data``), so the CLI never shadows the config.
"""

from __future__ import annotations

import shlex
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
import torch

from models.factory import ALL_MODELS, DEFAULT_MODELS
from models.features import spec_for_series
from quant.cli._context import AppContext, config_default, parse_date, pass_app


def register(group: click.Group) -> None:
    @group.command("evaluate")
    @click.option("--symbol", default=None, help=config_default("data.symbol", "Daily index"))
    @click.option(
        "--source",
        default=None,
        help="Daily source (default: config store.source_priority, the first that holds it).",
    )
    @click.option("--cross-check-source", default="eastmoney", show_default=True)
    @click.option("--start", callback=parse_date, default="2015-01-01", show_default=True)
    @click.option(
        "--end", callback=parse_date, default=None, help="Last test session (default: data)."
    )
    @click.option(
        "--retrain-every",
        type=int,
        default=None,
        help=config_default("forecast.evaluation.retrain_every"),
    )
    @click.option(
        "--max-epochs", type=int, default=None, help=config_default("forecast.train.max_epochs")
    )
    @click.option(
        "--seeds",
        type=int,
        default=None,
        help=config_default("forecast.evaluation.seeds", "K per neural model"),
    )
    @click.option(
        "--select/--no-select",
        default=None,
        help=config_default("forecast.evaluation.select", "Inner-validation selection"),
    )
    @click.option(
        "--executor",
        type=click.Choice(["local", "process", "ray"]),
        default=None,
        help=config_default("forecast.evaluation.executor", "Where fits run"),
    )
    @click.option(
        "--workers",
        type=int,
        default=None,
        help=config_default("forecast.evaluation.workers", "Processes / Ray CPUs"),
    )
    @click.option("--ray-address", default=None, help="Attach to this Ray cluster.")
    @click.option("--models", "model_list", default=",".join(DEFAULT_MODELS), show_default=True)
    @click.option("--intraday-symbol", default=None, help=config_default("data.intraday_symbol"))
    @click.option(
        "--intraday-frequency",
        type=click.Choice(["1m", "5m"]),
        default=None,
        help=config_default("forecast.features.intraday_minutes", "Intraday bar length"),
    )
    @click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads")
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
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
        seeds: int | None,
        select: bool | None,
        executor: str | None,
        workers: int | None,
        ray_address: str | None,
        model_list: str,
        intraday_symbol: str | None,
        intraday_frequency: str | None,
        threads: int,
        out: Path,
    ) -> None:
        """Walk-forward evaluation; writes OUT/evaluation.json, OUT/evaluation.md, plots,
        OUT/predictions.parquet (ensembles) and OUT/seed_predictions.parquet (single seeds)."""
        from models.evaluation import evaluate as run
        from models.inputs import load_daily, load_intraday

        models = tuple(m.strip() for m in model_list.split(",") if m.strip())
        unknown = sorted(set(models) - set(ALL_MODELS))
        if unknown:
            raise click.BadParameter(f"unknown models {unknown}; known: {ALL_MODELS}")
        torch.set_num_threads(threads)
        cfg = app.config.forecast
        ev_over: dict[str, Any] = {
            k: v
            for k, v in {
                "seeds": seeds,
                "select": select,
                "executor": executor,
                "workers": workers,
            }.items()
            if v is not None
        }
        feat_over = (
            {"intraday_minutes": int(intraday_frequency.rstrip("m"))} if intraday_frequency else {}
        )
        cfg = cfg.model_copy(
            update={
                "evaluation": cfg.evaluation.model_copy(update=ev_over),
                "features": cfg.features.model_copy(update=feat_over),
            }
        )
        sym = symbol or app.config.data.symbol
        isym = intraday_symbol or app.config.data.intraday_symbol
        minutes = cfg.features.intraday_minutes
        prio = app.config.store.source_priority
        con = app.connect(read_only=True)
        try:
            daily = load_daily(con, sym, source=source, end=end, priority=prio)
            intraday = load_intraday(con, isym, minutes, end=end, priority=prio)
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
            f"daily {sym} [{src}]: {daily.height} sessions; intraday {isym} {minutes}m: "
            f"{intraday.height} bars; {cfg.evaluation.seeds} seeds, executor "
            f"{cfg.evaluation.executor}",
            err=True,
        )
        meta = {
            "command": "quant " + shlex.join(sys.argv[1:]),
            "created_at": datetime.now().astimezone().isoformat(),
            "symbol": sym,
            "daily_source": src,
            "intraday_symbol": isym,
            "intraday_frequency": f"{minutes}m",
            "cross_check_source": cross_check_source,
        }
        r = run(
            daily,
            None if intraday.is_empty() else intraday,
            cfg,
            start=start,
            end=end,
            models=models,
            out=out,
            meta=meta,
            retrain_every=retrain_every,
            max_epochs=max_epochs,
            ray_address=ray_address,
            other=other,
        )
        click.echo(f"wrote {', '.join(map(str, r.paths))}", err=True)
        for name, rec in r.doc["models"].items():
            sp = rec.get("seed_spread")
            spread = (
                f" seeds {100 * sp['accuracy_min']:.1f}-{100 * sp['accuracy_max']:.1f}%"
                if sp
                else ""
            )
            click.echo(
                f"{name:>20}: n={rec['n']:5d} acc={100 * rec['accuracy']:.2f}% "
                f"[{100 * rec['ci_low']:.1f}, {100 * rec['ci_high']:.1f}] "
                f"p={rec['p_value']:.3f} logloss={rec['log_loss']:.4f}{spread}"
            )
        click.echo(r.doc.get("verdict", ""))
