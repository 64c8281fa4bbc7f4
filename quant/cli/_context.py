"""State shared by every subcommand: the loaded configuration and its store handle."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import click
import duckdb

from feeds.read import BarReader
from feeds.snapshot import publish_snapshot
from feeds.store import Store, StoreError
from quant.config import QuantConfig


@contextmanager
def _opening() -> Iterator[None]:
    """A store or lake that cannot be opened is a one-line CLI error."""
    from feeds.lake import LakeError

    try:
        yield
    except (StoreError, LakeError) as exc:
        raise click.ClickException(str(exc)) from exc


@dataclass(frozen=True)
class AppContext:
    config: QuantConfig

    @property
    def store(self) -> Store:
        """``store`` of the configuration: its source priority and writer lock."""
        return self.config.store.handle()

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """The raw store connection (read-only with ``store.lake`` set: bars from the lake);
        bar reads go through ``read`` / ``write``, which keep ``store.source_priority``."""
        with _opening():
            return self.store.connect(read_only=read_only)

    @contextmanager
    def lock(self, purpose: str) -> Iterator[None]:
        """Hold the store's exclusive writer lock (``feeds.lock``) for the block.

        A second writer gets ``LockHeldError`` ("store is locked by PID ... (purpose)"), which
        the CLI prints as one line.  Re-entrant within this process (``quant main`` holds it
        around the ingest and the pipeline); an in-memory store has no lock file and needs none.
        """
        with self.store.lock(purpose):
            yield

    @contextmanager
    def read(self) -> Iterator[BarReader]:
        """Bars read-only, in ``store.source_priority`` order (``Store.read``)."""
        with _opening(), self.store.read() as db:
            yield db

    @contextmanager
    def write(self, purpose: str) -> Iterator[BarReader]:
        """Bars and tables under the writer lock (``Store.write``)."""
        with _opening(), self.store.write(purpose) as db:
            yield db

    @contextmanager
    def writer(self, purpose: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """The store's connection opened for writing under its writer lock (see ``write``)."""
        with self.write(purpose) as db:
            yield db.con

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
