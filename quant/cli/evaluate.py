"""``quant evaluate``: walk-forward evaluation of the forecaster and its baselines.

A thin wrapper over ``models.evaluation.evaluate_store``: every option left out means "what the
configuration says" (``forecast.evaluation``, ``data``), so the CLI never shadows the config.
"""

from __future__ import annotations

import shlex
import sys
from datetime import date
from pathlib import Path

import click
import torch

from models.factory import DEFAULT_MODELS
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
        from models.evaluation import (
            EvaluationRequest,
            evaluate_store,
            parse_models,
            summary,
            with_overrides,
        )

        try:
            models = parse_models(model_list)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        torch.set_num_threads(threads)
        minutes = int(intraday_frequency.rstrip("m")) if intraday_frequency else None
        cfg = with_overrides(
            app.config.forecast,
            seeds=seeds,
            select=select,
            executor=executor,
            workers=workers,
            intraday_minutes=minutes,
        )
        req = EvaluationRequest(
            symbol=symbol or app.config.data.symbol,
            intraday_symbol=intraday_symbol or app.config.data.intraday_symbol,
            start=start,
            end=end,
            models=models,
            out=out,
            source_priority=app.config.store.source_priority,
            source=source,
            cross_check_source=cross_check_source,
            retrain_every=retrain_every,
            max_epochs=max_epochs,
            ray_address=ray_address,
            command="quant " + shlex.join(sys.argv[1:]),
        )
        r = evaluate_store(
            lambda: app.connect(read_only=True), cfg, req, note=lambda s: click.echo(s, err=True)
        )
        click.echo(f"wrote {', '.join(map(str, r.paths))}", err=True)
        for line in summary(r.doc):
            click.echo(line)
