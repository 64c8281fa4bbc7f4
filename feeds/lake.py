"""The market store's bars as a hive-partitioned Parquet lake, and reads back from it.

Layout under the lake root (one file per partition; ``year`` is the session's exchange year)::

    frequency=1d/symbol=000300.SH/year=2024/data.parquet
    frequency=1m/symbol=IF.CFE/year=2024/data.parquet
    manifest.json   # per file: rows, bytes, sha256, fingerprint, and per source rows + min/max

A file holds every source of its partition (``source`` is a column) and the store's columns less
the partition keys, including ``file_sha256`` and ``ingested_at`` (the point-in-time audit).

Exports are atomic per partition: the new file is written under a hidden ``.tmp-*`` folder,
fsynced, then renamed over ``data.parquet``, so a reader sees the old file or the new one, never
part of one; an interrupted export leaves only the hidden folder (removed by the next export)
and a manifest that still describes the last complete export.  A partition whose content
fingerprint (row count and an order-free hash of every row) equals the manifest's is not
rewritten, so re-exporting unchanged data touches nothing.

Readers (``attach_lake``) shadow the store's two bar tables with temporary views over
``read_parquet(..., hive_partitioning = true)``, so every query of ``feeds.read`` and what is
built on it runs unchanged; DuckDB prunes partitions from the ``symbol``/``frequency`` filters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from feeds.durable import file_sha256, place
from feeds.store import open_store

MANIFEST = "manifest.json"
DATA_FILE = "data.parquet"
_HIVE_TYPES = "{'frequency': 'VARCHAR', 'symbol': 'VARCHAR', 'year': 'INTEGER'}"
_VALUES = "open, high, low, close, volume, amount, open_interest, file_sha256, ingested_at"
_ISO = "%Y-%m-%dT%H:%M:%SZ"

# One SELECT per bar table, with the partition keys first (session is the exchange date).
_SOURCES = {
    "daily": f"SELECT '1d' AS frequency, symbol, year(session) AS year, kind, source, session, "
    f"ts, {_VALUES} FROM bars_daily",
    "intraday": f"SELECT frequency, symbol, year(session) AS year, kind, source, session, ts, "
    f"{_VALUES} FROM bars_intraday",
}


class LakeError(RuntimeError):
    """The lake cannot be read or written (the message names the path)."""


@dataclass(frozen=True)
class ExportReport:
    root: Path
    written: list[str] = field(default_factory=list)  # partition paths (re)written
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)  # partitions no longer in the store
    rows: int = 0  # rows in the whole lake after the export
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # fingerprint, write, place seconds


def partition_path(frequency: str, symbol: str, year: int) -> str:
    """The file of one partition, relative to the lake root."""
    if not symbol or any(c in symbol for c in "/\\=") or symbol.startswith("."):
        raise LakeError(f"symbol {symbol!r} cannot name a lake partition")
    return f"frequency={frequency}/symbol={symbol}/year={year}/{DATA_FILE}"


def _partitions(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Fingerprint and per-source summary of every partition the store holds."""
    union = " UNION ALL ".join(_SOURCES.values())
    rows = con.execute(
        f"""
        WITH b AS ({union})
        SELECT frequency, symbol, year, source, count(*) AS n,
               strftime(min(ts), '{_ISO}'), strftime(max(ts), '{_ISO}'),
               CAST(min(session) AS VARCHAR), CAST(max(session) AS VARCHAR),
               CAST(sum(hash(kind, source, session, ts, {_VALUES})) AS VARCHAR)
        FROM b GROUP BY ALL ORDER BY frequency, symbol, year, source
        """
    ).fetchall()
    parts: dict[str, dict[str, Any]] = {}
    for freq, sym, year, src, n, t0, t1, s0, s1, h in rows:
        p = parts.setdefault(
            partition_path(freq, sym, year),
            {"frequency": freq, "symbol": sym, "year": year, "rows": 0, "sources": [], "h": []},
        )
        p["rows"] += n
        p["h"].append(f"{src}:{n}:{h}")
        p["sources"].append(
            {"source": src, "rows": n, "min_ts": t0, "max_ts": t1, "first": s0, "last": s1}
        )
    for p in parts.values():
        p["fingerprint"] = hashlib.sha256("|".join(p.pop("h")).encode()).hexdigest()
    return parts


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The lake's manifest (an empty one when the lake has not been exported yet)."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return {"version": 1, "files": {}}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise LakeError(f"{path}: unreadable manifest: {exc}") from exc


def _unchanged(root: Path, rel: str, part: dict[str, Any], old: dict[str, Any]) -> bool:
    prev = old.get(rel)
    f = root / rel
    return (
        prev is not None
        and prev.get("fingerprint") == part["fingerprint"]
        and f.exists()
        and f.stat().st_size == prev.get("bytes")
    )


def _write_partition(con: duckdb.DuckDBPyConnection, part: dict[str, Any], out: Path) -> None:
    """One partition's rows, sorted by (source, ts), into the Parquet file ``out``.

    One COPY per partition rather than one ``PARTITION_BY`` pass: it always yields exactly one
    file per partition (DuckDB's partitioned writer splits a partition into several files once
    more than ``partitioned_write_max_open_files`` are open, which broke the rename-per-file
    atomicity on the 300-symbol panel), it holds one partition in memory rather than sorting the
    whole store, and each partition is placed as soon as it is written.  Its speed is within the
    noise of the single pass (``python -m benchmarks scale``, docs/scale.md).
    """
    daily = part["frequency"] == "1d"
    year = int(part["year"])
    table, cond = ("bars_daily", "") if daily else ("bars_intraday", "frequency = ? AND ")
    params: list[object] = [] if daily else [part["frequency"]]
    params += [part["symbol"], date(year, 1, 1), date(year + 1, 1, 1)]
    con.execute(  # session bounds rather than year(session): zonemaps prune row groups
        f"COPY (SELECT kind, source, session, ts, {_VALUES} FROM {table} "
        f"WHERE {cond}symbol = ? AND session >= ? AND session < ? ORDER BY source, ts) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)",
        params,
    )


def export_lake(con: duckdb.DuckDBPyConnection, root: str | Path) -> ExportReport:
    """Export every bar of the store on ``con`` to the lake at ``root`` (see the module doc)."""
    (bar,) = con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0]
    con.execute("SET enable_progress_bar = false")  # no terminal bar per partition COPY
    try:
        return _export(con, Path(root))
    finally:
        con.execute(f"SET enable_progress_bar = {'true' if bar else 'false'}")


def _export(con: duckdb.DuckDBPyConnection, root: Path) -> ExportReport:
    t_start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):  # left by an interrupted export; never read
        shutil.rmtree(stale, ignore_errors=True)
    manifest = read_manifest(root)
    old: dict[str, Any] = manifest.get("files", {})
    parts = _partitions(con)
    phases = {"fingerprint": time.perf_counter() - t_start, "write": 0.0, "place": 0.0}
    todo = [rel for rel, p in parts.items() if not _unchanged(root, rel, p, old)]
    files: dict[str, Any] = {rel: old[rel] for rel in parts if rel not in todo}
    if todo:
        tmp = root / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for rel in todo:
                t0 = time.perf_counter()
                out = tmp / f"{uuid.uuid4().hex}.parquet"
                _write_partition(con, parts[rel], out)
                t1 = time.perf_counter()
                files[rel] = {**parts[rel], "bytes": out.stat().st_size, "sha256": file_sha256(out)}
                place(out, root / rel)
                phases["write"] += t1 - t0
                phases["place"] += time.perf_counter() - t1  # sha256, fsync, rename
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    removed = sorted(rel for rel in old if rel not in parts)
    for rel in removed:
        (root / rel).unlink(missing_ok=True)
    _write_manifest(root, files)
    return ExportReport(
        root=root,
        written=todo,
        unchanged=len(parts) - len(todo),
        removed=removed,
        rows=sum(int(f["rows"]) for f in files.values()),
        seconds=time.perf_counter() - t_start,
        phases=phases,
    )


def _write_manifest(root: Path, files: dict[str, Any]) -> None:
    body = {
        "version": 1,
        "exported_at": datetime.now(UTC).strftime(_ISO),
        "layout": "frequency=/symbol=/year=/" + DATA_FILE,
        "files": dict(sorted(files.items())),
    }
    tmp = root / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    place(tmp, root / MANIFEST)


def _glob(root: str, frequency: str) -> str:
    return f"{root.rstrip('/')}/frequency={frequency}/symbol=*/year=*/*.parquet"


def attach_lake(con: duckdb.DuckDBPyConnection, root: str | Path) -> None:
    """Make ``con`` read bars from the lake: temp views shadow ``bars_daily``/``bars_intraday``.

    ``root`` is a local folder or an object-store URL (``s3://bucket/lake``; DuckDB's httpfs
    extension is loaded for it, credentials through a DuckDB secret or the usual variables).
    """
    r = str(root)
    if "://" in r:
        con.execute("INSTALL httpfs; LOAD httpfs")
    elif not Path(r).is_dir():
        raise LakeError(f"lake {r} does not exist (run `quant db export --parquet {r}`)")
    have = {
        Path(f).parts[-4].removeprefix("frequency=")
        for (f,) in con.execute("SELECT file FROM glob(?)", [_glob(r, "*")]).fetchall()
    }
    if not have:
        raise LakeError(f"lake {r} holds no partitions (frequency=/symbol=/year=/*.parquet)")
    if not con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'bars_daily' AND NOT temporary"
    ).fetchall()[0][0]:
        raise LakeError("attach_lake needs a store connection (open_store or open_lake)")
    daily = ["1d"] if "1d" in have else []
    con.execute(f"CREATE OR REPLACE TEMP VIEW bars_daily AS {_scan(r, daily, 'bars_daily')}")
    intra = _scan(r, sorted(have - {"1d"}), "bars_intraday")
    con.execute(f"CREATE OR REPLACE TEMP VIEW bars_intraday AS {intra}")


def _scan(root: str, frequencies: list[str], table: str) -> str:
    """SELECT of ``table``'s columns from the lake files of ``frequencies`` (none: empty)."""
    cols = f"symbol, kind, source, session, ts, {_VALUES}"
    if table == "bars_intraday":
        cols += ", frequency"
    if not frequencies:
        return f"SELECT {cols} FROM main.{table} WHERE false"
    globs = ", ".join(f"'{_glob(root, f)}'" for f in frequencies)
    return (
        f"SELECT {cols} FROM read_parquet([{globs}], hive_partitioning = true, "
        f"hive_types = {_HIVE_TYPES})"
    )


def open_lake(root: str | Path, *, store: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """A read connection whose bars are the lake's.

    With an existing ``store`` file, that store opened read-only (its quarantine, ingest log and
    other tables stay visible); otherwise an in-memory store (a node that has only the lake).
    """
    if store is not None and str(store) != ":memory:" and Path(store).exists():
        con = open_store(store, read_only=True)
    else:
        con = open_store(":memory:")
    try:
        attach_lake(con, root)
    except BaseException:
        con.close()
        raise
    return con


def verify_lake(root: str | Path) -> list[str]:
    """Files whose bytes do not match the manifest's sha256 (or that are missing)."""
    root = Path(root)
    bad = []
    for rel, f in read_manifest(root).get("files", {}).items():
        p = root / rel
        if not p.exists() or file_sha256(p) != f["sha256"]:
            bad.append(rel)
    return bad
