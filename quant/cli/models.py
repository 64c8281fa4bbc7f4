"""``quant models list | show | promote | rollback``: the model registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
import duckdb

from feeds.snapshot import open_snapshot, publish_snapshot
from feeds.store import StoreError, open_store
from quant import registry
from quant.cli._context import AppContext, pass_app
from quant.cli.pipeline import locked_store
from quant.config import models_dir


@contextmanager
def reader(app: AppContext) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store read-only, or its published snapshot while a writer holds it."""
    try:
        con = open_store(app.config.store.path, read_only=True)
    except StoreError:
        try:
            con = open_snapshot(app.config.store.path)
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo("(store busy: reading the published snapshot)", err=True)
    try:
        yield con
    finally:
        con.close()


@click.group("models")
def models_group() -> None:
    """Model versions and the champion pointer."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_cmd(app: AppContext, as_json: bool) -> None:
    """Every version, oldest first; the champion is marked."""
    with reader(app) as con:
        versions = registry.list_versions(con)
        champ = registry.champion(con)
    cid = champ.version_id if champ else None
    if as_json:
        rows = [{**v.as_dict(), "champion": v.version_id == cid} for v in versions]
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for v in versions:
        mark = "*" if v.version_id == cid else " "
        click.echo(
            f"{mark} {v.version_id}  {v.kind:<8} parent={v.parent_id or '-':<24} "
            f"trained {v.train_start}..{v.train_end}  {v.created_at:%Y-%m-%d %H:%M}Z"
        )
    if not versions:
        click.echo("registry empty (run `quant main` or `quant run-daily`)")


@models_group.command("show")
@click.argument("version_id", required=False)
@pass_app
def show_cmd(app: AppContext, version_id: str | None) -> None:
    """One version as JSON (default: the champion), with the champion history."""
    with reader(app) as con:
        try:
            v = registry.get_version(con, version_id) if version_id else registry.champion(con)
        except registry.RegistryError as exc:
            raise click.ClickException(str(exc)) from exc
        if v is None:
            raise click.ClickException("no champion yet")
        hist = [h for h in registry.champion_history(con) if h["version_id"] == v.version_id]
    doc = {**v.as_dict(), "champion_events": hist}
    click.echo(json.dumps(doc, indent=2, default=str))


@models_group.command("promote")
@click.argument("version_id")
@click.option("--reason", default="manual promotion", show_default=True)
@pass_app
def promote_cmd(app: AppContext, version_id: str, reason: str) -> None:
    """Make VERSION_ID champion (its weights must verify)."""
    with locked_store(app, f"quant models promote {version_id}") as con:
        try:
            registry.load_verified(registry.get_version(con, version_id), models_dir(app.config))
            v = registry.promote(con, version_id, reason)
        except registry.RegistryError as exc:
            raise click.ClickException(str(exc)) from exc
        publish_snapshot(con, app.config.store.path)
    click.echo(f"champion: {v.version_id}")


@models_group.command("rollback")
@click.option("--reason", default="manual rollback", show_default=True)
@pass_app
def rollback_cmd(app: AppContext, reason: str) -> None:
    """Make the previous champion champion again."""
    with locked_store(app, "quant models rollback") as con:
        try:
            v = registry.rollback(con, reason)
        except registry.RegistryError as exc:
            raise click.ClickException(str(exc)) from exc
        publish_snapshot(con, app.config.store.path)
    click.echo(f"champion: {v.version_id}")


def register(group: click.Group) -> None:
    group.add_command(models_group)
