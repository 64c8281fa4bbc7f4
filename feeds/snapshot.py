"""Published read-only snapshots of the store, so readers never contend with the one writer.

DuckDB allows one writing process per file, and a read-only open fails while a writer holds it.
The writer (scheduler, CLI ingest) therefore publishes a consistent copy after each commit batch:
``COPY FROM DATABASE`` into a temporary file, fsync, then an atomic rename over
``<store>.snapshot.duckdb``.  Readers (the signal API, notebooks) open the snapshot read-only and
re-open it when ``snapshot_version`` changes; a reader holding the old file keeps a consistent
view until it re-opens (the rename never touches the inode it has open).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import duckdb

from feeds.durable import place


def snapshot_path(store: str | Path) -> Path:
    """Where the snapshot of ``store`` is published."""
    p = Path(store)
    return p.with_name(p.stem + ".snapshot.duckdb")


def copy_database(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Copy the committed state of ``con``'s database into a new file at ``path`` (replaced)."""
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    db_name = con.execute("SELECT current_database()").fetchall()[0][0]
    con.execute(f"ATTACH '{path}' AS _copy").fetchall()
    try:
        con.execute(f'COPY FROM DATABASE "{db_name}" TO _copy').fetchall()
    finally:
        con.execute("DETACH _copy").fetchall()


def publish_snapshot(con: duckdb.DuckDBPyConnection, store: str | Path) -> Path:
    """Copy the writer's committed state to the snapshot file atomically; returns its path."""
    target = snapshot_path(store)
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    copy_database(con, tmp)
    place(tmp, target)
    return target


def snapshot_version(store: str | Path) -> int | None:
    """An id that changes whenever a new snapshot is published (None when there is none)."""
    try:
        st = snapshot_path(store).stat()
    except FileNotFoundError:
        return None
    return st.st_ino ^ st.st_mtime_ns


_opened = itertools.count()


def open_snapshot(store: str | Path) -> duckdb.DuckDBPyConnection:
    """Open the CURRENT published snapshot of ``store`` read-only (FileNotFoundError if none).

    DuckDB keeps one database instance per path and process: while any connection to the
    snapshot path is open, connecting to it again returns that instance, i.e. the old file even
    after a new snapshot was renamed over it.  Opening through a one-off hard link gives a fresh
    instance of the current file; the link is removed at once (the open file stays readable).
    """
    path = snapshot_path(store)
    if not path.exists():
        raise FileNotFoundError(f"no published snapshot {path}; run the pipeline or `quant main`")
    link = path.with_name(f"{path.name}.reader-{os.getpid()}-{next(_opened)}")
    os.link(path, link)
    try:
        con = duckdb.connect(str(link), read_only=True)
    finally:
        link.unlink()
    con.execute("SET TimeZone = 'UTC'")
    return con
