"""``quant db export --parquet DIR``: the store's bars as a hive-partitioned Parquet lake."""

from __future__ import annotations

import json
from pathlib import Path

import click

from feeds.lake import LakeError, export_lake
from feeds.store import StoreError, open_store
from quant.cli._context import AppContext, pass_app


@click.command("export")
@click.option(
    "--parquet",
    "lake",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Lake folder (frequency=/symbol=/year=/data.parquet plus manifest.json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the export report as JSON.")
@pass_app
def db_export(app: AppContext, lake: Path, as_json: bool) -> None:
    """Export every bar of the store to a Parquet lake (atomic per partition, incremental).

    Only partitions whose content changed since the last export are rewritten.  Read the lake
    back with the config setting store.lake (env QUANT__STORE__LAKE=DIR): read-only commands
    (evaluate, db stats, reconcile, ...) then take their bars from it.
    """
    try:  # always the store file itself, never a lake configured for reads
        con = open_store(app.config.store.path, read_only=True)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        report = export_lake(con, lake)
    except LakeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        con.close()
    if as_json:
        body = {
            "lake": str(report.root),
            "written": report.written,
            "unchanged": report.unchanged,
            "removed": report.removed,
            "rows": report.rows,
            "seconds": round(report.seconds, 3),
        }
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(
        f"exported {report.rows} rows to {report.root}: {len(report.written)} partitions written, "
        f"{report.unchanged} unchanged, {len(report.removed)} removed ({report.seconds:.1f}s)"
    )
