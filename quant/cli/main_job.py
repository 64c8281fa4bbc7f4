"""``quant main``: the service's main job end to end on the configured store."""

from __future__ import annotations

import click

from feeds.stats import store_stats
from quant.cli._context import AppContext, pass_app
from quant.cli.data import _print_report, _stats_table, ingest_paths, ingest_synthetic_default


@click.command("main")
@click.option("--no-real", is_flag=True, help="Skip the real vendor files even when present.")
@pass_app
def main_job(app: AppContext, no_real: bool) -> None:
    """Create the store, ingest the SYNTHETIC market and the real files, print a summary.

    The real files are read in place from ``data.real_data_dir`` (default ../shared/data/real)
    when that directory exists.
    """
    click.echo(f"store: {app.config.store.path}")
    _print_report(ingest_synthetic_default(app))
    real = app.config.data.real_data_dir
    if no_real:
        click.echo("real data: skipped (--no-real)")
    elif real.is_dir():
        if ingest_paths(app, [real], None, None):
            raise click.ClickException(f"some files under {real} could not be ingested")
    else:
        click.echo(f"real data: {real} not found; the store holds the synthetic market only")
    with app.connect(read_only=True) as con:
        click.echo("\nstore summary (rows per symbol, frequency and source):")
        click.echo(_stats_table(store_stats(con)))


def register(group: click.Group) -> None:
    group.add_command(main_job)
