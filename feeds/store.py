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

from feeds.schema import DDL, INTRADAY_VIEW


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
        con.execute(DDL)
        _intraday_layout(con)
    return con


_LEGACY_COPY = """
INSERT INTO bar_series
SELECT row_number() OVER (ORDER BY symbol, kind, frequency, source)::INTEGER, *
FROM (SELECT DISTINCT symbol, kind, frequency, source FROM bars_intraday);
INSERT INTO intraday_values
SELECT s.series_id, b.session, b.ts, b.open, b.high, b.low, b.close, b.volume, b.amount,
       b.open_interest, b.file_sha256, b.ingested_at
FROM bars_intraday b JOIN bar_series s USING (symbol, kind, frequency, source)
ORDER BY s.series_id, b.ts;
DROP TABLE bars_intraday;
"""


def _intraday_layout(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``bars_intraday`` view; a store from before the series key is migrated once.

    Such a store holds ``bars_intraday`` as a table with the series spelled out on every row (and
    maybe the older primary key): its rows move to ``intraday_values`` under integer series ids,
    in one transaction, and the view takes the table's name.
    """
    kinds = con.execute(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_name = 'bars_intraday' AND table_schema = 'main'"
    ).fetchall()
    if kinds and kinds[0][0] == "VIEW":
        return
    with transaction(con):
        if kinds:
            con.execute(_LEGACY_COPY)
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
