"""Ingest vendor files into the store: one file, one transaction, idempotent by content hash.

A file either lands whole (valid bars upserted, rejected rows quarantined with file, line and
reason, missing-bar counts per session recorded, one ``ingest_log`` row) or not at all.
Re-ingesting identical bytes is a no-op; a corrected file updates the rows that changed and
records each changed field in ``bar_revisions``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import polars as pl

from feeds.calendar import Segment, intraday_grid, session_segments
from feeds.parse import IngestError, ParsedFile, read_file
from feeds.profiles import SourceProfile
from feeds.provenance import check_provenance
from feeds.schema import Frequency, InstrumentKind
from feeds.store import transaction
from feeds.synthetic import SYNTHETIC_SYMBOL, synthetic_market
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


def _already(con: duckdb.DuckDBPyConnection, key: str) -> bool:
    return bool(
        con.execute("SELECT count(*) FROM ingest_log WHERE ingest_key = ?", [key]).fetchall()[0][0]
    )


def ingest_key(content_sha256: str, profile: str, symbol: str | None) -> str:
    """Identity of one ingest: the same bytes read another way (profile, symbol) is new work."""
    return hashlib.sha256(f"{content_sha256}|{profile}|{symbol or ''}".encode()).hexdigest()


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    *,
    profile: str | None = None,
    symbol: str | None = None,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    recorded_as: str | None = None,
) -> IngestReport:
    """Parse, validate and land one file atomically; raises ``IngestError`` if unreadable.

    ``also`` runs inside the same transaction (an adapter's per-bar contract record, say);
    ``recorded_as`` is the path stored for the rows when the file is about to move (an inbox's
    archive).
    """
    started = datetime.now(UTC)
    parsed = read_file(path, profile=profile, symbol=symbol)
    key = ingest_key(parsed.sha256, parsed.profile.name, symbol)
    if _already(con, key):
        log.info("%s: unchanged (content already ingested)", parsed.path)
        return IngestReport(
            str(parsed.path), parsed.sha256, parsed.profile.name, parsed.profile.source, "unchanged"
        )
    checked = validate(parsed.rows, parsed.profile.frequency.minutes)
    return _land(
        con, parsed, checked.bars, checked.rejected, started, key=key, name=recorded_as, also=also
    )


def _land(
    con: duckdb.DuckDBPyConnection,
    parsed: ParsedFile,
    bars: pl.DataFrame,
    rejected: pl.DataFrame,
    started: datetime,
    *,
    key: str,
    name: str | None = None,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> IngestReport:
    now = datetime.now(UTC)
    path = name or str(parsed.path)
    check_provenance(con, bars, name=path)
    with transaction(con):
        written = write_bars(con, bars.drop("_line"), file_sha256=parsed.sha256, ingested_at=now)
        if rejected.height:
            q = rejected.select(
                pl.lit(parsed.sha256).alias("file_sha256"),
                pl.lit(path).alias("path"),
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
        gaps = record_session_gaps(con, bars.filter(pl.col("frequency") != "1d"))
        if also is not None:
            also(con)
        con.execute(
            "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                key,
                parsed.sha256,
                path,
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
        path=path,
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


@lru_cache(maxsize=64)
def _expected_bars(kind: InstrumentKind, segments: tuple[Segment, ...], minutes: int) -> int:
    return sum(
        ((end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)) // minutes
        for start, end in segments
    )


def record_session_gaps(con: duckdb.DuckDBPyConnection, bars: pl.DataFrame) -> int:
    """Recount expected vs present bars for every (symbol, frequency, source, session) touched.

    Returns the number of touched sessions with missing bars.
    """
    if bars.is_empty():
        return 0
    touched = bars.select("symbol", "kind", "frequency", "source", "session").unique()
    con.register("_touched", touched.to_arrow())
    counts = con.execute(
        "SELECT symbol, t.kind, frequency, source, session, count(*) AS present "
        "FROM bars_intraday b JOIN _touched t USING (symbol, frequency, source, session) "
        "GROUP BY ALL"
    ).fetchall()
    con.unregister("_touched")
    rows = []
    for symbol, kind, freq, source, session, n_present in counts:
        minutes = int(freq.rstrip("m"))
        ik = InstrumentKind(kind)
        expected = _expected_bars(ik, session_segments(ik, session), minutes)
        missing = max(expected - n_present, 0)
        first_missing = None
        if missing:
            grid = intraday_grid(InstrumentKind(kind), session, minutes)
            have = {
                r[0]
                for r in con.execute(
                    "SELECT ts FROM bars_intraday WHERE symbol = ? AND frequency = ? "
                    "AND source = ? AND session = ?",
                    [symbol, freq, source, session],
                ).fetchall()
            }
            first_missing = next((g for g in grid if g not in have), None)
        rows.append((symbol, freq, source, session, expected, n_present, missing, first_missing))
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
    con.execute("INSERT OR REPLACE INTO session_gaps SELECT * FROM _gaps").fetchall()
    con.unregister("_gaps")
    return sum(1 for r in rows if r[6] > 0)


def ingest_frame(
    con: duckdb.DuckDBPyConnection,
    bars: pl.DataFrame,
    *,
    name: str,
    key: str,
    profile: str = "frame",
) -> IngestReport:
    """Validate and land an in-memory frame of canonical bars (adapters, generators, bulk loads).

    ``name`` is recorded as the path and ``key`` (hashed) makes the load idempotent.  Rows are
    validated exactly like file rows; the row number stands in for the line.
    """
    sha = hashlib.sha256(key.encode()).hexdigest()
    source = bars["source"][0] if bars.height else "frame"
    if _already(con, sha):
        return IngestReport(name, sha, profile, source, "unchanged")
    started = datetime.now(UTC)
    rows = bars.with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + 1).alias("_line"),
        pl.lit(None, pl.String).alias("_raw"),
        pl.lit(None, pl.String).alias("_reason"),
        pl.lit(None, pl.String).alias("_field"),
    )
    good, bad = [], []
    for (freq,), part in rows.group_by("frequency", maintain_order=True):
        checked = validate(part, Frequency(str(freq)).minutes)
        good.append(checked.bars)
        bad.append(checked.rejected)
    prof = ParsedFile(
        path=Path(name),
        sha256=sha,
        profile=SourceProfile(
            name=profile,
            source=source,
            description="in-memory frame",
            frequency=Frequency.DAILY,
            kind=InstrumentKind.INDEX,
            columns={},
        ),
        encoding="",
        rows=rows,
        dropped_lines=(),
    )
    return _land(con, prof, pl.concat(good), pl.concat(bad), started, key=sha, name=name)


def ingest_synthetic(
    con: duckdb.DuckDBPyConnection,
    *,
    start: date,
    end: date,
    seed: int,
    minute_sessions: int,
    symbol: str = SYNTHETIC_SYMBOL,
) -> IngestReport:
    """Generate and land the SYNTHETIC market (idempotent by its parameters)."""
    key = f"synthetic:v1:{symbol}:{start}:{end}:{seed}:{minute_sessions}"
    name = (
        f"synthetic://{symbol}?seed={seed}&start={start}&end={end}"
        f"&minute_sessions={minute_sessions}"
    )
    market = synthetic_market(start, end, seed=seed, symbol=symbol, minute_sessions=minute_sessions)
    return ingest_frame(
        con, pl.concat([market.daily, market.minute]), name=name, key=key, profile="synthetic"
    )


__all__ = [
    "IngestError",
    "IngestReport",
    "expand_paths",
    "ingest_file",
    "ingest_frame",
    "ingest_synthetic",
    "record_session_gaps",
]
