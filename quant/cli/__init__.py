"""The one ``quant`` command line.  Each subsystem registers its subcommands from its own module."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from quant.cli._context import AppContext
from quant.config import ConfigError, load_config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="QUANT_DB",
    help="DuckDB store file (default from config: var/quant.duckdb). Env: QUANT_DB.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="QUANT_CONFIG",
    help="TOML configuration file. Env: QUANT_CONFIG; QUANT__SECTION__FIELD overrides one field.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def cli(ctx: click.Context, db: Path | None, config_path: Path | None, verbose: bool) -> None:
    """CSI 300 forecasting service: market store, forecaster, backtests, pipeline and API."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    overrides = {"store": {"path": str(db)}} if db is not None else None
    try:
        cfg = load_config(config_path, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx.obj = AppContext(cfg)


def _register() -> None:
    from quant.cli import backtest, data, evaluate, main_job, predict, serve
    from quant.cli import keys as keys_cli
    from quant.cli import models as models_cli
    from quant.cli import pipeline as pipeline_cli

    data.register(cli)
    main_job.register(cli)
    evaluate.register(cli)
    backtest.register(cli)
    keys_cli.register(cli)
    serve.register(cli)
    predict.register(cli)
    models_cli.register(cli)
    pipeline_cli.register(cli)


_register()


def main() -> None:
    cli(prog_name="quant")
