"""The one ``quant`` command line.  Each subsystem registers its subcommands from its own module.

Subcommand modules are imported only when their command runs (torch and vectorbt take seconds to
import), so ``quant --help`` and ``quant ingest`` stay fast.  ``COMMANDS`` names each command's
module and its one-line help; a test checks the lines against the commands' own docstrings.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from pathlib import Path

import click

from quant.cli._context import AppContext
from quant.config import ConfigError, apply_calendar, load_config

COMMANDS: dict[str, tuple[str, str]] = {
    "main": (
        "main_job",
        "Ingest the SYNTHETIC market and the real files, run one daily pipeline, print...",
    ),
    "ingest": (
        "data",
        "Ingest vendor files or directories into the store (one transaction per file).",
    ),
    "fetch": (
        "data",
        "Fetch SYMBOL with a vendor ADAPTER (needs internet and the optional extra)...",
    ),
    "sources": ("data", "List the source profiles (vendor layouts) the ingester understands."),
    "reconcile": (
        "data",
        "Compare every pair of daily sources of SYMBOL on their common sessions.",
    ),
    "db": ("data", "Inspect the store; export it to a Parquet lake."),
    "feeds": (
        "feeds",
        "Configured feeds, late and held days, the calendar horizon; release a held bar.",
    ),
    "evaluate": (
        "evaluate",
        "Walk-forward evaluation; writes OUT/evaluation.json, OUT/evaluation.md,...",
    ),
    "backtest": (
        "backtest",
        "Backtest P(up) predictions: accuracy report, trading figures, HTML/PNG/JSON,...",
    ),
    "models": ("models", "Model versions and the champion pointer."),
    "finetune": (
        "pipeline",
        "Fine-tune the champion on data up to DATE, then gate the challenger (outside...",
    ),
    "run-daily": (
        "pipeline",
        "Ingest, fine-tune, gate, signal, backtest and report for one session...",
    ),
    "schedule": (
        "pipeline",
        "Run the daily pipeline after the close on XSHG trading days until...",
    ),
    "replay": (
        "pipeline",
        "Replay the pipeline day by day over [FROM, TO]; writes OUT/replay.json and...",
    ),
    "finetune-search": (
        "pipeline",
        "Score the fine-tune candidates on [FROM, TO] (keep it before the replay's...",
    ),
    "predict": (
        "predict",
        "Forecast the session after SESSION with the champion; publish signal and...",
    ),
    "serve": ("serve", "Serve signals and forecasts from the published snapshot of the store."),
    "keys": ("keys", "API keys of the signal API (bearer tokens with scopes; stored as salted..."),
}


def load_command(name: str) -> click.Command | None:
    """Import the module that defines ``name`` and return the command (None if unknown)."""
    if name not in COMMANDS:
        return None
    module = importlib.import_module(f"quant.cli.{COMMANDS[name][0]}")
    group = click.Group()
    module.register(group)
    return group.commands.get(name)


# Errors that mean "your input, data or environment is not usable", not "a bug": every
# subcommand reports them as one line (``Error: <cause>``) and exits 1; ``-v`` adds the
# traceback.  Named by module so that catching them imports nothing (a class whose module was
# never imported cannot have been raised).
USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("feeds.parse", "IngestError"),
    ("feeds.read", "NoDataError"),
    ("feeds.store", "StoreError"),
    ("feeds.lock", "LockHeldError"),
    ("quant.config", "ConfigError"),
    ("models.features", "FeatureError"),
    ("models.checkpoint", "CheckpointError"),
    ("backtest.inputs", "BacktestInputError"),
    ("quant.registry", "RegistryError"),
    ("quant.pipeline_steps", "StepError"),
    ("quant.replay", "ReplayError"),
    ("duckdb", "IOException"),
    ("builtins", "FileNotFoundError"),
    ("builtins", "PermissionError"),
)


def user_error_types() -> tuple[type[BaseException], ...]:
    """The ``USER_ERRORS`` classes whose modules are loaded in this process."""
    found = (getattr(sys.modules.get(m), name, None) for m, name in USER_ERRORS)
    return tuple(t for t in found if isinstance(t, type) and issubclass(t, BaseException))


def _cause(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class LazyGroup(click.Group):
    """Lists commands from ``COMMANDS``; imports a command's module only to run or document it.

    Expected errors of any subcommand (``USER_ERRORS``) become one line and exit status 1.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if ctx.params.get("verbose") and exc.__cause__ is not None:
                traceback.print_exception(exc.__cause__, file=sys.stderr)
            raise
        except Exception as exc:
            if isinstance(exc, click.exceptions.Exit) or not isinstance(exc, user_error_types()):
                raise
            if ctx.params.get("verbose"):
                traceback.print_exception(exc, file=sys.stderr)
            raise click.ClickException(_cause(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="QUANT_DB",
    help="DuckDB store file (default: config store.path, built-in var/quant.duckdb). "
    "Env: QUANT_DB.",
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
    apply_calendar(cfg)  # extra holidays and horizon for every command of this process
    ctx.obj = AppContext(cfg)


def main() -> None:
    cli(prog_name="quant")
