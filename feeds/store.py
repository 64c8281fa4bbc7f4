"""The embedded DuckDB market store: connections, schema creation and transactions.

DuckDB allows one writing process per database file.  Writers open the store with
``open_store(path)``; readers that must not block a running writer read a published snapshot
(see ``docs/store.md``).  Every connection runs with ``TimeZone = 'UTC'`` so that TIMESTAMPTZ
values come back to polars as UTC-aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from feeds.schema import STORE_TABLES, create_tables


class StoreError(RuntimeError):
    """The store cannot be opened or written."""


def open_store(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (and, when writable, create or migrate) the store at ``path``; ``:memory:`` works."""
    p = str(path)
    if p != ":memory:":
        if read_only and not Path(p).exists():
            raise StoreError(f"store {p} does not exist (run `quant ingest` first)")
        if not read_only:
            Path(p).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(p, read_only=read_only)
    except duckdb.IOException as exc:  # most often: another process holds the write lock
        raise StoreError(f"cannot open store {p}: {exc}") from exc
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        create_tables(con, STORE_TABLES)
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing block: commits on success, rolls back on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
