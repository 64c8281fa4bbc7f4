"""Ingest vendor files into the store: one file, one transaction, idempotent by content hash.

A file either lands whole (valid bars upserted, rejected rows quarantined with file, line and
reason, missing-bar counts per session recorded, one ``ingest_log`` row) or not at all.
Re-ingesting identical bytes is a no-op; a corrected file updates the rows that changed and
records each changed field in ``bar_revisions``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from feeds.calendar import intraday_grid
from feeds.parse import IngestError, ParsedFile, read_file
from feeds.schema import InstrumentKind
from feeds.store import transaction
from feeds.synthetic import SYNTHETIC_SOURCE, synthetic_market
from feeds.validate import validate
from feeds.writer import write_bars

log = logging.getLogger(__name__)

INGESTIBLE_SUFFIXES = (".csv", ".parquet", ".txt")


@dataclass(frozen=True)
class IngestReport:
    path: str
    sha256: str
    profile: str
    source: str
    status: str  # "ingested" | "unchanged"
    rows_read: int = 0
    rows_loaded: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_quarantined: int = 0
    rows_dropped: int = 0
    sessions_with_gaps: int = 0


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly, and ingestible files under named directories (sorted)."""
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in INGESTIBLE_SUFFIXES
            )
        else:
            yield p


def _already(con: duckdb.DuckDBPyConnection, sha: str) -> bool:
    return bool(
        con.execute("SELECT count(*) FROM ingest_log WHERE file_sha256 = ?", [sha]).fetchall()[0][0]
    )


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    *,
    profile: str | None = None,
    symbol: str | None = None,
) -> IngestReport:
    """Parse, validate and land one file atomically; raises ``IngestError`` if unreadable."""
    started = datetime.now(UTC)
    parsed = read_file(path, profile=profile, symbol=symbol)
    if _already(con, parsed.sha256):
        log.info("%s: unchanged (content already ingested)", parsed.path)
        return IngestReport(
            str(parsed.path), parsed.sha256, parsed.profile.name, parsed.profile.source, "unchanged"
        )
    checked = validate(parsed.rows, parsed.profile.frequency.minutes)
    return _land(con, parsed, checked.bars, checked.rejected, started)


def _land(
    con: duckdb.DuckDBPyConnection,
    parsed: ParsedFile,
    bars: pl.DataFrame,
    rejected: pl.DataFrame,
    started: datetime,
) -> IngestReport:
    now = datetime.now(UTC)
    with transaction(con):
        written = write_bars(con, bars.drop("_line"), file_sha256=parsed.sha256, ingested_at=now)
        if rejected.height:
            q = rejected.select(
                pl.lit(parsed.sha256).alias("file_sha256"),
                pl.lit(str(parsed.path)).alias("path"),
                pl.col("_line").alias("line"),
                "symbol",
                "frequency",
                "source",
                pl.col("_field").alias("field"),
                pl.col("_reason").alias("reason"),
                pl.col("_raw").alias("raw"),
                pl.lit(now).alias("quarantined_at"),
            )
            con.register("_q", q.to_arrow())
            con.execute("INSERT INTO quarantine SELECT * FROM _q").fetchall()
            con.unregister("_q")
        gaps = record_session_gaps(con, bars) if parsed.profile.frequency.intraday else 0
        con.execute(
            "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                parsed.sha256,
                str(parsed.path),
                parsed.profile.name,
                parsed.profile.source,
                parsed.rows_read,
                bars.height,
                written.inserted,
                written.updated,
                rejected.height,
                len(parsed.dropped_lines),
                started,
                datetime.now(UTC),
            ],
        ).fetchall()
    report = IngestReport(
        path=str(parsed.path),
        sha256=parsed.sha256,
        profile=parsed.profile.name,
        source=parsed.profile.source,
        status="ingested",
        rows_read=parsed.rows_read,
        rows_loaded=bars.height,
        rows_inserted=written.inserted,
        rows_updated=written.updated,
        rows_quarantined=rejected.height,
        rows_dropped=len(parsed.dropped_lines),
        sessions_with_gaps=gaps,
    )
    log.debug("%s", report)
    return report


def record_session_gaps(con: duckdb.DuckDBPyConnection, bars: pl.DataFrame) -> int:
    """Recount expected vs present bars for every (symbol, frequency, source, session) touched."""
    if bars.is_empty():
        return 0
    touched = bars.select("symbol", "kind", "frequency", "source", "session").unique()
    con.register("_touched", touched.to_arrow())
    present = con.execute(
        "SELECT b.symbol, t.kind, b.frequency, b.source, b.session, count(*) AS present, "
        "list(b.ts ORDER BY b.ts) AS stamps FROM bars_intraday b JOIN _touched t "
        "USING (symbol, frequency, source, session) GROUP BY ALL"
    ).fetchall()
    con.unregister("_touched")
    rows = []
    for symbol, kind, freq, source, session, n_present, stamps in present:
        minutes = int(freq.rstrip("m"))
        grid = intraday_grid(InstrumentKind(kind), session, minutes)
        missing = len(grid) - n_present
        first_missing = None
        if missing > 0:
            have = {s.timestamp() for s in stamps}
            first_missing = next((g for g in grid if g.timestamp() not in have), None)
        rows.append(
            (symbol, freq, source, session, len(grid), n_present, max(missing, 0), first_missing)
        )
    # One set-based statement: executemany costs a round trip per session (seconds on 1,400).
    gaps = pl.DataFrame(
        rows,
        schema={
            "symbol": pl.String,
            "frequency": pl.String,
            "source": pl.String,
            "session": pl.Date,
            "expected": pl.Int32,
            "present": pl.Int32,
            "missing": pl.Int32,
            "first_missing": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    con.register("_gaps", gaps.to_arrow())
    try:
        con.execute("INSERT OR REPLACE INTO session_gaps SELECT * FROM _gaps").fetchall()
    finally:
        con.unregister("_gaps")
    return sum(1 for r in rows if r[6] > 0)


def ingest_synthetic(
    con: duckdb.DuckDBPyConnection,
    *,
    start: date,
    end: date,
    seed: int,
    minute_sessions: int,
    symbol: str = "000300.SH",
) -> IngestReport:
    """Generate and land the SYNTHETIC market (idempotent by its parameters)."""
    key = f"synthetic:v1:{symbol}:{start}:{end}:{seed}:{minute_sessions}"
    sha = hashlib.sha256(key.encode()).hexdigest()
    path = f"synthetic://{symbol}?seed={seed}&start={start}&end={end}&minute_sessions={minute_sessions}"
    if _already(con, sha):
        return IngestReport(path, sha, "synthetic", SYNTHETIC_SOURCE, "unchanged")
    started = datetime.now(UTC)
    market = synthetic_market(start, end, seed=seed, symbol=symbol, minute_sessions=minute_sessions)
    bars = pl.concat([market.daily, market.minute])
    now = datetime.now(UTC)
    with transaction(con):
        w = write_bars(con, bars, file_sha256=sha, ingested_at=now)
        gaps = record_session_gaps(con, market.minute)
        con.execute(
            "INSERT INTO ingest_log VALUES (?, ?, 'synthetic', ?, ?, ?, ?, ?, 0, 0, ?, ?)",
            [
                sha,
                path,
                SYNTHETIC_SOURCE,
                bars.height,
                bars.height,
                w.inserted,
                w.updated,
                started,
                now,
            ],
        ).fetchall()
    return IngestReport(
        path,
        sha,
        "synthetic",
        SYNTHETIC_SOURCE,
        "ingested",
        bars.height,
        bars.height,
        w.inserted,
        w.updated,
        0,
        0,
        gaps,
    )


__all__ = [
    "IngestError",
    "IngestReport",
    "expand_paths",
    "ingest_file",
    "ingest_synthetic",
    "record_session_gaps",
]
