"""State shared by every subcommand: the loaded configuration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import click
import duckdb

from feeds.snapshot import publish_snapshot
from feeds.store import StoreError, open_store
from quant.config import QuantConfig
from quant.lock import StoreLock

_HELD: set[str] = set()  # stores whose writer lock this process holds (via AppContext.lock)


@dataclass(frozen=True)
class AppContext:
    config: QuantConfig

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """The store; read-only with ``store.lake`` set, its bars come from the Parquet lake."""
        lake = self.config.store.lake if read_only else None
        try:
            if lake is not None:
                from feeds.lake import LakeError, open_lake

                try:
                    return open_lake(lake, store=self.config.store.path)
                except LakeError as exc:
                    raise click.ClickException(str(exc)) from exc
            return open_store(self.config.store.path, read_only=read_only)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc

    @contextmanager
    def lock(self, purpose: str) -> Iterator[None]:
        """Hold the store's exclusive writer lock (``quant.lock``) for the block.

        A second writer gets ``LockHeldError`` ("store is locked by PID ... (purpose)"), which
        the CLI prints as one line.  Re-entrant within this process (``quant main`` holds it
        around the ingest and the pipeline); an in-memory store has no lock file and needs none.
        """
        path = str(self.config.store.path)
        if path == ":memory:" or path in _HELD:
            yield
            return
        with StoreLock(path, purpose):
            _HELD.add(path)
            try:
                yield
            finally:
                _HELD.discard(path)

    @contextmanager
    def writer(self, purpose: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """The store opened for writing under its writer lock (see ``lock``)."""
        with self.lock(purpose):
            con = self.connect()
            try:
                yield con
            finally:
                con.close()

    def publish(self, con: duckdb.DuckDBPyConnection) -> None:
        """Publish the read-only snapshot readers use (API, notebooks) after a write."""
        if str(self.config.store.path) != ":memory:":
            publish_snapshot(con, self.config.store.path)


pass_app = click.make_pass_decorator(AppContext)


def parse_date(_: object, __: object, value: str | None) -> date | None:
    """click callback: an ISO date (YYYY-MM-DD) or None."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from exc


_BUILT_IN = QuantConfig()


def config_default(key: str, text: str = "") -> str:
    """Help of an option that, left out, takes the configuration's ``key`` (``data.symbol``).

    Every such option defaults to None and the command reads ``app.config``; the help names the
    key and its built-in value, so a CLI default can never shadow the config.  A key that does
    not exist fails when the command is defined (and in the CLI tests)."""
    node: object = _BUILT_IN
    for part in key.split("."):
        if not hasattr(node, part):
            raise KeyError(f"no configuration key {key!r} (at {part!r})")
        node = getattr(node, part)
    shown = ",".join(map(str, node)) if isinstance(node, tuple) else node
    lead = f"{text} " if text else ""
    return f"{lead}(default: config {key}, built-in {shown})."
