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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import polars as pl

from feeds.calendar import Segment, intraday_grid, session_segments, trading_days
from feeds.parse import IngestError, ParsedFile, read_file
from feeds.profiles import SourceProfile
from feeds.provenance import check_provenance
from feeds.schema import Frequency, InstrumentKind
from feeds.store import transaction
from feeds.synthetic import SYNTHETIC_SYMBOL, synthetic_market
from feeds.validate import validate
from feeds.writer import distinct, stored_intraday, write_bars

log = logging.getLogger(__name__)

INGESTIBLE_SUFFIXES = (".csv", ".parquet", ".txt")
CHECKPOINT_ROWS = 100_000  # a batch this large is checkpointed right after its commit


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
    # where the time went, seconds: parse, validate, keys (duplicate check against the store),
    # insert (rows, updates, revisions), gaps (session-gap accounting), log (quarantine, log,
    # commit), checkpoint (of a large batch)
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
    t0 = time.perf_counter()
    parsed = read_file(path, profile=profile, symbol=symbol)
    key = ingest_key(parsed.sha256, parsed.profile.name, symbol)
    if _already(con, key):
        log.info("%s: unchanged (content already ingested)", parsed.path)
        return IngestReport(
            str(parsed.path),
            parsed.sha256,
            parsed.profile.name,
            parsed.profile.source,
            "unchanged",
            unmapped_columns=parsed.unmapped_columns,
        )
    t1 = time.perf_counter()
    checked = validate(parsed.rows, parsed.profile.frequency.minutes)
    seconds = {"parse": t1 - t0, "validate": time.perf_counter() - t1}
    return _land(
        con,
        parsed,
        checked.bars,
        checked.rejected,
        started,
        key=key,
        name=recorded_as,
        also=also,
        seconds=seconds,
    )


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
) -> IngestReport:
    now = datetime.now(UTC)
    path = name or str(parsed.path)
    check_provenance(con, bars, name=path)
    with transaction(con):
        written = write_bars(con, bars.drop("_line"), file_sha256=parsed.sha256, ingested_at=now)
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
        gaps = record_session_gaps(con, bars.filter(pl.col("frequency") != "1d"))
        if also is not None:
            also(con)
        missing = record_daily_gaps(con, bars.filter(pl.col("frequency") == "1d"))
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
    if bars.height >= CHECKPOINT_ROWS:
        # fold the bulk write into the database file now: DuckDB otherwise defers it to a later
        # checkpoint (at the latest at close), whose memory grows with everything loaded since
        try:
            con.execute("CHECKPOINT").fetchall()
        except duckdb.Error as exc:  # another transaction is open: DuckDB checkpoints later
            log.info("checkpoint after %s deferred: %s", path, exc)
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


@lru_cache(maxsize=64)
def _expected_bars(kind: InstrumentKind, segments: tuple[Segment, ...], minutes: int) -> int:
    return sum(
        ((end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)) // minutes
        for start, end in segments
    )


def record_session_gaps(con: duckdb.DuckDBPyConnection, bars: pl.DataFrame) -> int:
    """Recount expected vs present bars for every (symbol, frequency, source, session) touched.

    ``bars`` have just been written, so each of them is stored; when the store holds no other
    row of their series in their sessions (one count answers it), they are what is present and
    are counted in polars.  Returns the number of touched sessions with missing bars.
    """
    if bars.is_empty():
        return 0
    series = ["symbol", "frequency", "source", "session"]
    names = ["symbol", "kind", "frequency", "source"]
    one = distinct(bars, names)
    if one.height == 1:  # one series: group by session alone
        per_session = bars.group_by("session").agg(pl.len().cast(pl.Int64).alias("present"))
        touched = per_session.select(*(pl.lit(one[c][0]).alias(c) for c in names), "session")
    else:
        per_session = None
        touched = bars.select(*names, "session").unique()
    # the touched series and span as constants, so DuckDB's zone maps skip other row groups
    stored, params = stored_intraday(con, touched["symbol"].unique().to_list())
    span = [touched["session"].min(), touched["session"].max()]
    con.register("_touched", touched.to_arrow())
    try:
        (n_stored,) = con.execute(
            f"SELECT count(*) FROM {stored} s SEMI JOIN _touched t "
            "USING (symbol, frequency, source) WHERE s.session BETWEEN ? AND ?",
            [*params, *span],
        ).fetchall()[0]
        if n_stored == bars.height and per_session is not None:  # the batch is all there is
            counts = touched.with_columns(per_session["present"]).rows()
        elif n_stored == bars.height:
            present = bars.group_by(series).agg(pl.len().cast(pl.Int64).alias("present"))
            counts = touched.join(present, on=series).select(*names, "session", "present").rows()
        else:
            counts = con.execute(
                "SELECT symbol, t.kind, frequency, source, session, count(*) AS present "
                f"FROM (SELECT symbol, frequency, source, session FROM {stored} s "
                "WHERE session BETWEEN ? AND ?) b "
                "JOIN _touched t USING (symbol, frequency, source, session) GROUP BY ALL",
                [*params, *span],
            ).fetchall()
    finally:
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
            stored, params = stored_intraday(con, [symbol])
            have = {
                r[0]
                for r in con.execute(
                    f"SELECT ts FROM {stored} s WHERE frequency = ? AND source = ? AND session = ?",
                    [*params, freq, source, session],
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


def record_daily_gaps(con: duckdb.DuckDBPyConnection, bars: pl.DataFrame) -> tuple[date, ...]:
    """Record the XSHG sessions without a stored daily bar inside each touched series' span.

    For every (symbol, source) in ``bars`` the stored span first..last session is compared with
    the calendar; its ``session_gaps`` rows (frequency '1d', expected 1, present 0) are replaced.
    Such a session breaks the label of the session before it (``models.labels``).  Returns the
    missing sessions, ascending.
    """
    if bars.is_empty():
        return ()
    missing_all: set[date] = set()
    for symbol, source in bars.select("symbol", "source").unique().iter_rows():
        have = {
            r[0]
            for r in con.execute(
                "SELECT session FROM bars_daily WHERE symbol = ? AND source = ?", [symbol, source]
            ).fetchall()
        }
        missing = [d for d in trading_days(min(have), max(have)) if d not in have]
        con.execute(
            "DELETE FROM session_gaps WHERE symbol = ? AND frequency = '1d' AND source = ?",
            [symbol, source],
        ).fetchall()
        if missing:
            con.executemany(
                "INSERT INTO session_gaps VALUES (?, '1d', ?, ?, 1, 0, 1, NULL)",
                [[symbol, source, d] for d in missing],
            )
        missing_all.update(missing)
    return tuple(sorted(missing_all))


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
    t0 = time.perf_counter()
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
    seconds = {"parse": 0.0, "validate": time.perf_counter() - t0}
    return _land(
        con, prof, pl.concat(good), pl.concat(bad), started, key=sha, name=name, seconds=seconds
    )


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
