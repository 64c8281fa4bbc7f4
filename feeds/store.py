"""The embedded DuckDB market store: the ``Store`` handle, connections, transactions.

DuckDB allows one writing process per database file.  ``Store`` carries the two rules of using a
store: ``Store.write`` holds the exclusive writer lock (``feeds.lock``) while it is open, and
both ``Store.read`` and ``Store.write`` hand out a ``feeds.read.BarReader`` that reads bars in the
store's ``source_priority``.  ``open_store(path)`` is the raw connection underneath; readers
that must not block a running writer read a published snapshot (``feeds.snapshot``).  Every
connection runs with ``TimeZone = 'UTC'`` so that TIMESTAMPTZ values come back to polars as
UTC-aware datetimes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from feeds.lock import StoreLock
from feeds.read import BarReader
from feeds.schema import (
    INTRADAY_VALUES,
    INTRADAY_VIEW,
    ROW_GROUP_SIZE,
    STORE_TABLES,
    create_tables,
)

_HELD: set[str] = set()  # stores whose writer lock this process holds (via Store.lock)


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
        con = _connect(p, read_only=read_only)
    except duckdb.IOException as exc:  # most often: another process holds the write lock
        raise StoreError(f"cannot open store {p}: {exc}") from exc
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        create_tables(con, STORE_TABLES)
        _intraday_layout(con)
    return con


_ATTACHED: dict[str, list[weakref.ref[duckdb.DuckDBPyConnection]]] = {}  # by resolved path
_ATTACH_LOCK = threading.Lock()


def _cursor_of_open(
    key: str,
) -> tuple[duckdb.DuckDBPyConnection | None, list[weakref.ref[duckdb.DuckDBPyConnection]]]:
    """A new connection (cursor) on the instance of a connection to ``key`` this process handed
    out and that is still open, and the weak references worth keeping.

    ``cursor()`` fails on a closed connection and runs no query on an open one, so another
    thread may be using that connection meanwhile."""
    cursor: duckdb.DuckDBPyConnection | None = None
    keep: list[weakref.ref[duckdb.DuckDBPyConnection]] = []
    for ref in _ATTACHED.get(key, []):
        con = ref()
        if con is None:
            continue
        if cursor is None:
            try:
                cursor = con.cursor()
            except duckdb.ConnectionException:  # closed
                continue
        keep.append(ref)
    return cursor, keep


def _connect(path: str, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the store file; written with row groups of
    ``ROW_GROUP_SIZE`` rows (an option of the attach, not of the file, so every writer sets it).

    A file is attached once per process: a second writable open while a connection to it is
    open gets a cursor of that connection (DuckDB's instance cache shares plain connects in the
    same way), and the file is detached when the first one closes.  Closing a connection closes
    the cursors made from it, so overlapping opens in one process must close in reverse order,
    as nested blocks do (a use after that fails with "Connection already closed").
    """
    if read_only or path == ":memory:":
        return duckdb.connect(path, read_only=read_only)
    key = str(Path(path).resolve())
    with _ATTACH_LOCK:
        cursor, keep = _cursor_of_open(key)
        if cursor is not None:
            con = cursor
        else:
            con = duckdb.connect()
            quoted = path.replace("'", "''")
            try:
                con.execute(f"ATTACH '{quoted}' AS store (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
            except BaseException:
                con.close()
                raise
            con.execute(f"SET temp_directory = '{quoted}.tmp'")  # where a file database spills
        con.execute("USE store")
        _ATTACHED[key] = [*keep, weakref.ref(con)]
    return con


_BATCHES_FROM = """
INSERT INTO bar_batches
SELECT row_number() OVER (ORDER BY ingested_at, file_sha256)::INTEGER, file_sha256, ingested_at
FROM (SELECT DISTINCT file_sha256, ingested_at FROM {old});
"""
_BATCH_OF = (
    "JOIN bar_batches w ON w.file_sha256 IS NOT DISTINCT FROM b.file_sha256 "
    "AND w.ingested_at = b.ingested_at"
)
_VALUES = "b.session, b.ts, b.open, b.high, b.low, b.close, b.volume, b.amount, b.open_interest"

# before the series key: ``bars_intraday`` a table with the series spelled out on every row
_SERIES_COPY = f"""
INSERT INTO bar_series
SELECT row_number() OVER (ORDER BY symbol, kind, frequency, source)::INTEGER, *
FROM (SELECT DISTINCT symbol, kind, frequency, source FROM bars_intraday);
{_BATCHES_FROM.format(old="bars_intraday")}
INSERT INTO intraday_values
SELECT s.series_id, {_VALUES}, w.batch_id
FROM bars_intraday b JOIN bar_series s USING (symbol, kind, frequency, source) {_BATCH_OF}
ORDER BY s.series_id, b.ts;
DROP TABLE bars_intraday;
"""

# before the batch key: ``intraday_values`` with the file's hash and time on every row
_BATCH_COPY = f"""
ALTER TABLE intraday_values RENAME TO _intraday_values_v1;
{INTRADAY_VALUES.ddl}
{_BATCHES_FROM.format(old="_intraday_values_v1")}
INSERT INTO intraday_values
SELECT b.series_id, {_VALUES}, w.batch_id FROM _intraday_values_v1 b {_BATCH_OF}
ORDER BY b.series_id, b.ts;
DROP TABLE _intraday_values_v1;
"""


def _intraday_layout(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``bars_intraday`` view; a store of an older layout is migrated once.

    Before the series key, ``bars_intraday`` was a table with the series spelled out on every
    row (and maybe a primary key); before the batch key, ``intraday_values`` rows carried the
    file's hash and ingest time.  Either moves to ``intraday_values`` under integer series and
    batch ids in one transaction, and the view takes the old table's name.
    """
    kinds = con.execute(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_name = 'bars_intraday' AND table_schema = 'main'"
    ).fetchall()
    old_values = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = 'intraday_values' AND column_name = 'file_sha256'"
    ).fetchall()[0][0]
    if kinds and kinds[0][0] == "VIEW" and not old_values:
        return
    with transaction(con):
        if old_values:
            con.execute(_BATCH_COPY)
        if kinds and kinds[0][0] != "VIEW":
            con.execute(_SERIES_COPY)
        con.execute(INTRADAY_VIEW)


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


@dataclass(frozen=True)
class Store:
    """A market store: its file, the source priority of every bar read, and (optionally) the
    Parquet lake that read-only opens read bars from.  Built from the configuration by
    ``quant.config.StoreConfig.handle``."""

    path: Path
    source_priority: tuple[str, ...]
    lake: str | None = None

    @contextmanager
    def lock(self, purpose: str) -> Iterator[None]:
        """Hold the store's exclusive writer lock for the block (``LockHeldError`` when another
        process holds it).  Re-entrant within a process; ``:memory:`` has no lock file."""
        key = str(self.path)
        if key == ":memory:" or key in _HELD:
            yield
            return
        with StoreLock(self.path, purpose):
            _HELD.add(key)
            try:
                yield
            finally:
                _HELD.discard(key)

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """The raw connection (read-only with ``lake`` set: bars from the lake).  A writable
        connection from here does not take the lock: use ``write`` unless the caller holds it."""
        if read_only and self.lake is not None:
            from feeds.lake import open_lake

            return open_lake(self.lake, store=self.path)
        return open_store(self.path, read_only=read_only)

    @contextmanager
    def read(self) -> Iterator[BarReader]:
        """Read-only bars in ``source_priority`` order; the connection closes after the block."""
        con = self.connect(read_only=True)
        try:
            yield BarReader(con, self.source_priority)
        finally:
            con.close()

    @contextmanager
    def write(self, purpose: str) -> Iterator[BarReader]:
        """The store opened for writing under its writer lock, for the block."""
        with self.lock(purpose):
            con = self.connect()
            try:
                yield BarReader(con, self.source_priority)
            finally:
                con.close()
