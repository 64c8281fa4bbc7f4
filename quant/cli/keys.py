"""``quant keys create | list | revoke``: API keys in ``<store>.keys.sqlite`` (hashes only)."""

from __future__ import annotations

import json

import click

from quant.api.keys import SCOPES, KeyStore, UnknownKeyError, keys_path
from quant.cli._context import AppContext, pass_app


def _store(app: AppContext) -> KeyStore:
    return KeyStore(keys_path(app.config.store.path))


@click.group("keys")
def keys() -> None:
    """API keys of the signal API (bearer tokens with scopes; stored as salted scrypt hashes)."""


@keys.command("create")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="Repeat for several: signals:read, forecast.",
)
@click.option("--name", default="", help="Who the key is for (shown by `quant keys list`).")
@pass_app
def create(app: AppContext, scopes: tuple[str, ...], name: str) -> None:
    """Create a key and print it ONCE, alone on the last line (it cannot be shown again)."""
    ks = _store(app)
    token, info = ks.create(scopes, name)
    ks.close()
    click.echo(f"key id {info.key_id} scopes {' '.join(info.scopes)} (shown once; store it now)")
    click.echo(token)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_app
def list_keys(app: AppContext, as_json: bool) -> None:
    """Key ids, names, scopes, last four characters, creation and revocation times."""
    ks = _store(app)
    rows = ks.list_keys()
    ks.close()
    if as_json:
        doc = [
            {
                "key_id": k.key_id,
                "name": k.name,
                "scopes": list(k.scopes),
                "last4": k.last4,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in rows
        ]
        click.echo(json.dumps(doc, indent=2))
        return
    if not rows:
        click.echo("no API keys")
        return
    for k in rows:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}Z" if k.revoked_at else "active"
        click.echo(
            f"{k.key_id}  ...{k.last4}  {' '.join(k.scopes):<24} {k.name or '-':<16} "
            f"created {k.created_at:%Y-%m-%d %H:%M}Z  {state}"
        )


@keys.command("revoke")
@click.argument("key_id")
@pass_app
def revoke(app: AppContext, key_id: str) -> None:
    """Revoke KEY_ID (the id from `quant keys list`); a running API refuses it at once."""
    ks = _store(app)
    try:
        info = ks.revoke(key_id)
    except UnknownKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        ks.close()
    click.echo(f"revoked {info.key_id} at {info.revoked_at:%Y-%m-%d %H:%M:%S}Z")


def register(group: click.Group) -> None:
    group.add_command(keys)
