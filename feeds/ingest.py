"""Ingest vendor files into the store: one file, one transaction, idempotent by content hash.

A file either lands whole (valid bars upserted, rejected rows quarantined with file, line and
reason, missing-bar counts per session recorded, one ``ingest_log`` row) or not at all.
Re-ingesting identical bytes is a no-op; a corrected file updates the rows that changed and
records each changed field in ``bar_revisions``.
"""

from __future__ import annotations

import hashlib
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from feeds.gaps import batch_gaps, record_daily_gaps, record_session_gaps
from feeds.parse import IngestError, ParsedFile, read_file
from feeds.profiles import SourceProfile
from feeds.provenance import check_provenance
from feeds.schema import Frequency, InstrumentKind
from feeds.series import Factorized, distinct, factorize
from feeds.store import transaction
from feeds.synthetic import SYNTHETIC_SYMBOL, synthetic_market
from feeds.validate import validate
from feeds.writer import SERIES_COLUMNS, split_daily, write_bars

log = logging.getLogger(__name__)

INGESTIBLE_SUFFIXES = (".csv", ".parquet", ".txt")
BULK_ROWS = 100_000  # a batch this large is a bulk write (DuckDB writes its row groups to the file)
# bulk rows landed on a connection since its last checkpoint that call for one (``_checkpoint``)
CHECKPOINT_ROWS = 4_000_000
_SINCE_CHECKPOINT: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, int] = (
    weakref.WeakKeyDictionary()
)


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
    sessions_with_gaps: int = 0  # intraday sessions with missing bars
    unmapped_columns: tuple[str, ...] = ()  # header columns no profile field reads
    missing_sessions: tuple[date, ...] = ()  # XSHG sessions without a daily bar in the span
    # where the time went, seconds: parse, validate, count (the batch's session gaps, counted
    # ahead), keys (duplicate check against the store), insert (rows, updates, revisions), gaps
    # (session-gap accounting in the store), log (quarantine, log, commit), checkpoint (after a
    # few million bulk rows)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (dates as ISO strings) for ``quant ingest --json``."""
        d = asdict(self)
        d["unmapped_columns"] = list(self.unmapped_columns)
        d["missing_sessions"] = [s.isoformat() for s in self.missing_sessions]
        return d


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


@dataclass(frozen=True)
class Prepared:
    """A file or frame read and validated, not yet landed (``prepare_file``, ``prepare_frame``:
    no store access, so a worker thread can prepare the next one while this one lands)."""

    parsed: ParsedFile
    key: str  # ingest_key: the identity that makes the load idempotent
    bars: pl.DataFrame
    rejected: pl.DataFrame
    started: datetime
    seconds: dict[str, float]
    name: str | None = None  # the path recorded for the rows (else the file's own)
    # the intraday bars' session gaps if they land where the store holds none of their series
    # (``feeds.gaps.batch_gaps``; the usual bulk load), counted ahead with no store access
    counted: pl.DataFrame | None = None
    # the bars' series: ``factorize(bars, SERIES_COLUMNS)`` (the distinct series, and each row's)
    series: Factorized | None = None


def _count(bars: pl.DataFrame, f: Factorized) -> pl.DataFrame:
    """The session-gap rows of the intraday ones of validated ``bars`` (``feeds.gaps.batch_gaps``)
    from their series ``f`` (``factorize`` on ``SERIES_COLUMNS``, as ``validate`` returns it)."""
    intraday = split_daily(bars, f.values)[1]
    return batch_gaps(intraday, f if intraday.height == bars.height else None)


def prepare_file(
    path: str | Path, *, profile: str | None = None, symbol: str | None = None
) -> Prepared:
    """Parse and validate one file; raises ``IngestError`` if unreadable."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    parsed = read_file(path, profile=profile, symbol=symbol)
    t1 = time.perf_counter()
    checked = validate(parsed.rows, parsed.profile.frequency.minutes)
    t2 = time.perf_counter()
    series = checked.series
    counted = _count(checked.bars, series)
    seconds = {"parse": t1 - t0, "validate": t2 - t1, "count": time.perf_counter() - t2}
    key = ingest_key(parsed.sha256, parsed.profile.name, symbol)
    bars, rejected = checked.bars, checked.rejected
    return Prepared(parsed, key, bars, rejected, started, seconds, counted=counted, series=series)


def land(
    con: duckdb.DuckDBPyConnection,
    prep: Prepared,
    *,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    recorded_as: str | None = None,
) -> IngestReport:
    """Land a prepared file or frame atomically (or report it unchanged when already landed).

    ``also`` runs inside the same transaction (an adapter's per-bar contract record, say);
    ``recorded_as`` is the path stored for the rows when the file is about to move (an inbox's
    archive).
    """
    parsed = prep.parsed
    if _already(con, prep.key):
        log.info("%s: unchanged (content already ingested)", prep.name or parsed.path)
        return IngestReport(
            prep.name or str(parsed.path),
            parsed.sha256,
            parsed.profile.name,
            parsed.profile.source,
            "unchanged",
            unmapped_columns=parsed.unmapped_columns,
        )
    return _land(
        con,
        parsed,
        prep.bars,
        prep.rejected,
        prep.started,
        key=prep.key,
        name=recorded_as or prep.name,
        also=also,
        seconds=dict(prep.seconds),
        counted=prep.counted,
        series=prep.series,
    )


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    *,
    profile: str | None = None,
    symbol: str | None = None,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    recorded_as: str | None = None,
) -> IngestReport:
    """Parse, validate and land one file atomically; raises ``IngestError`` if unreadable
    (``land`` says what ``also`` and ``recorded_as`` do)."""
    prep = prepare_file(path, profile=profile, symbol=symbol)
    return land(con, prep, also=also, recorded_as=recorded_as)


def _land(
    con: duckdb.DuckDBPyConnection,
    parsed: ParsedFile,
    bars: pl.DataFrame,
    rejected: pl.DataFrame,
    started: datetime,
    *,
    key: str,
    seconds: dict[str, float],
    name: str | None = None,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    counted: pl.DataFrame | None = None,
    series: Factorized | None = None,
) -> IngestReport:
    now = datetime.now(UTC)
    path = name or str(parsed.path)
    values = None if series is None else series.values
    check_provenance(con, bars, name=path, series=values)
    with transaction(con):
        written = write_bars(
            con, bars.drop("_line"), file_sha256=parsed.sha256, ingested_at=now, series=series
        )
        t0 = time.perf_counter()
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
        t1 = time.perf_counter()
        daily, intraday = split_daily(bars, values)
        gaps = record_session_gaps(con, intraday, fresh=written.fresh, counted=counted)
        if also is not None:
            also(con)
        missing = record_daily_gaps(con, daily)
        t2 = time.perf_counter()
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
    t3 = time.perf_counter()
    if bars.height >= BULK_ROWS:
        _checkpoint(con, path, bars.height)
    seconds = {
        **seconds,
        "checkpoint": time.perf_counter() - t3,
        "keys": written.keys_s,
        "insert": written.insert_s,
        "gaps": t2 - t1,
        "log": (t1 - t0) + (t3 - t2),  # includes the COMMIT
    }
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
        unmapped_columns=parsed.unmapped_columns,
        missing_sessions=missing,
        seconds=seconds,
    )
    log.debug("%s", report)
    return report


def _checkpoint(con: duckdb.DuckDBPyConnection, path: str, rows: int) -> None:
    """Count a bulk write's ``rows`` against ``con``; once ``CHECKPOINT_ROWS`` have landed since
    the connection's last checkpoint, fold them into the database file now, without vacuuming.

    Committed rows are durable either way (DuckDB writes a bulk batch's row groups to the file
    and the WAL names them; a reopen replays it), so the checkpoint is for the WAL and the close,
    not for safety.  Its cost grows with the size of the table (10 ms on an empty one, 27 ms at
    10 M rows, measured), so one after every batch grew quadratically with the load (0.65 s of
    10 M rows, 3.0 s of 30 M); peak RSS was the same with one after every batch or none at all
    (DuckDB keeps the blocks it wrote cached either way).  A checkpoint's vacuum would merge
    each batch's first row group with the partial row group the previous batch left,
    re-compressing both, which cost as much as writing the batches; without it each bulk batch
    leaves at most one partial row group behind, and later checkpoints (small appends) vacuum as
    usual.
    """
    since = _SINCE_CHECKPOINT.get(con, 0) + rows
    if since < CHECKPOINT_ROWS:
        _SINCE_CHECKPOINT[con] = since
        return
    con.execute("SET max_vacuum_tasks = 0")
    try:
        con.execute("CHECKPOINT").fetchall()
        since = 0
    except duckdb.Error as exc:  # another transaction is open: DuckDB checkpoints later
        log.info("checkpoint after %s deferred: %s", path, exc)
    finally:
        con.execute("RESET max_vacuum_tasks")
    _SINCE_CHECKPOINT[con] = since


def prepare_frame(bars: pl.DataFrame, *, name: str, key: str, profile: str = "frame") -> Prepared:
    """Validate an in-memory frame of canonical bars exactly like file rows (the row number
    stands in for the line); ``name`` is recorded as the path and ``key`` (hashed) is the
    load's identity."""
    sha = hashlib.sha256(key.encode()).hexdigest()
    source = bars["source"][0] if bars.height else "frame"
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    rows = bars.with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + 1).alias("_line"),
        pl.lit(None, pl.String).alias("_raw"),
        pl.lit(None, pl.String).alias("_reason"),
        pl.lit(None, pl.String).alias("_field"),
    )
    freqs = distinct(rows, ["frequency"])["frequency"].to_list()
    parts = (
        [(freqs[0], rows)]
        if len(freqs) == 1
        else [(f, part) for (f,), part in rows.group_by("frequency", maintain_order=True)]
    )
    checked = [validate(part, Frequency(str(freq)).minutes) for freq, part in parts]
    t1 = time.perf_counter()
    bars_ok = pl.concat([c.bars for c in checked])
    series = checked[0].series if len(checked) == 1 else factorize(bars_ok, SERIES_COLUMNS)
    counted = _count(bars_ok, series)
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
    seconds = {"parse": 0.0, "validate": t1 - t0, "count": time.perf_counter() - t1}
    return Prepared(
        prof,
        sha,
        bars_ok,
        pl.concat([c.rejected for c in checked]),
        started,
        seconds,
        name=name,
        counted=counted,
        series=series,
    )


def ingest_frame(
    con: duckdb.DuckDBPyConnection,
    bars: pl.DataFrame,
    *,
    name: str,
    key: str,
    profile: str = "frame",
) -> IngestReport:
    """Validate and land an in-memory frame of canonical bars (adapters, generators, bulk loads);
    ``prepare_frame`` says what ``name`` and ``key`` are.  An already landed key is not
    validated again."""
    sha = hashlib.sha256(key.encode()).hexdigest()
    if _already(con, sha):
        source = bars["source"][0] if bars.height else "frame"
        return IngestReport(name, sha, profile, source, "unchanged")
    return land(con, prepare_frame(bars, name=name, key=key, profile=profile))


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
