"""Bulk upsert of validated bars into the store, recording what a corrected file changed.

Callers wrap ``write_bars`` in ``feeds.store.transaction`` so a file lands whole or not at all.
Keys are kept unique by the writer, not by an index: each batch is semi-joined against the
stored keys (``keys_s``), restricted to the batch's symbols and time span so DuckDB's zone maps
skip the row groups of other series; new rows go in through DuckDB's Arrow scan (``insert_s``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from feeds.schema import BAR_COLUMNS, BAR_SCHEMA, VALUE_FIELDS


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    updated: int
    unchanged: int
    keys_s: float = 0.0  # finding which keys are stored (the duplicate check)
    insert_s: float = 0.0  # inserting new rows, updating changed ones, recording revisions


def _conform(bars: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars frame lacks columns {missing}")
    return bars.select(BAR_COLUMNS).cast(BAR_SCHEMA)  # type: ignore[arg-type]


def write_bars(
    con: duckdb.DuckDBPyConnection,
    bars: pl.DataFrame,
    *,
    file_sha256: str | None,
    ingested_at: datetime | None = None,
) -> WriteResult:
    """Upsert ``bars`` (canonical schema; daily and intraday rows may be mixed).

    New keys are inserted; existing keys whose values differ are updated and every changed field
    is written to ``bar_revisions``; identical rows are left alone (so re-ingest is a no-op).
    """
    at = ingested_at or datetime.now(UTC)
    bars = _conform(bars)
    inserted = updated = unchanged = 0
    keys_s = insert_s = 0.0
    is_daily = bars["frequency"] == "1d"
    for daily in (True, False):
        part = bars.filter(is_daily if daily else ~is_daily)
        if part.is_empty():
            continue
        r = _upsert(con, part, daily=daily, file_sha256=file_sha256, at=at)
        inserted += r.inserted
        updated += r.updated
        unchanged += r.unchanged
        keys_s += r.keys_s
        insert_s += r.insert_s
    return WriteResult(inserted, updated, unchanged, keys_s, insert_s)


_MAX_LISTED = 64  # symbols named in the zone-map filter; more: the time span alone


def _stored_span(part: pl.DataFrame, daily: bool) -> tuple[str, list[object]]:
    """A filter on the stored table that keeps every row the batch could match (and few others)."""
    col = "session" if daily else "ts"
    lo, hi = part[col].min(), part[col].max()
    cond = f"t.{col} BETWEEN ? AND ?"
    params: list[object] = [lo, hi]
    symbols = part["symbol"].unique().to_list()
    if len(symbols) <= _MAX_LISTED:
        cond += f" AND t.symbol IN ({', '.join('?' for _ in symbols)})"
        params += symbols
    return cond, params


def _upsert(
    con: duckdb.DuckDBPyConnection,
    part: pl.DataFrame,
    *,
    daily: bool,
    file_sha256: str | None,
    at: datetime,
) -> WriteResult:
    table = "bars_daily" if daily else "bars_intraday"
    keys = ["symbol", "source", "session"] if daily else ["symbol", "frequency", "source", "ts"]
    cols = [c for c in BAR_COLUMNS if daily is False or c != "frequency"]
    staged = part.select(cols)
    con.register("_staged", staged.to_arrow())
    try:
        t0 = time.perf_counter()
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        insert_new = (
            f"INSERT INTO {table} ({', '.join(cols)}, file_sha256, ingested_at) "
            f"SELECT {', '.join('s.' + c for c in cols)}, ?, ? FROM _staged s"
        )
        span, span_params = _stored_span(staged, daily)
        stored = f"(SELECT * FROM {table} t WHERE {span})"
        # nothing stored in the span (zone maps answer without reading rows): no join to build
        candidates = con.execute(
            f"SELECT count(*) FROM {table} t WHERE {span}", span_params
        ).fetchall()[0][0]
        matched = (
            con.execute(
                f"SELECT count(*) FROM _staged s SEMI JOIN {stored} t ON {on}", span_params
            ).fetchall()[0][0]
            if candidates
            else 0
        )
        t1 = time.perf_counter()
        if matched == 0:  # bulk fast path: nothing to compare against
            con.execute(insert_new, [file_sha256, at]).fetchall()
            return WriteResult(staged.height, 0, 0, t1 - t0, time.perf_counter() - t1)
        differs = " OR ".join(f"t.{f} IS DISTINCT FROM s.{f}" for f in VALUE_FIELDS)
        freq = "'1d'" if daily else "s.frequency"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _changed AS SELECT s.symbol, {freq} AS frequency, "
            f"s.source, s.ts, "
            + ", ".join(f"t.{f} AS old_{f}, s.{f} AS new_{f}" for f in VALUE_FIELDS)
            + f" FROM _staged s JOIN {stored} t ON {on} WHERE {differs}",
            span_params,
        ).fetchall()
        n_changed = con.execute("SELECT count(*) FROM _changed").fetchall()[0][0]
        if n_changed:
            # Record field-level revisions before overwriting.
            for f in VALUE_FIELDS:
                con.execute(
                    f"INSERT INTO bar_revisions SELECT symbol, frequency, source, ts, '{f}', "
                    f"old_{f}, new_{f}, ?, ? FROM _changed WHERE old_{f} IS DISTINCT FROM new_{f}",
                    [file_sha256 or "", at],
                ).fetchall()
            setters = ", ".join(f"{f} = s.{f}" for f in (*VALUE_FIELDS, "kind"))
            con.execute(
                f"UPDATE {table} t SET {setters}, file_sha256 = ?, ingested_at = ? "
                f"FROM _staged s WHERE {on} AND ({differs})",
                [file_sha256, at],
            ).fetchall()
        con.execute("DROP TABLE _changed").fetchall()
        n_new = staged.height - matched
        if n_new:
            con.execute(
                insert_new + f" ANTI JOIN {stored} t ON {on}", [file_sha256, at, *span_params]
            ).fetchall()
        elapsed = time.perf_counter() - t1
        return WriteResult(n_new, n_changed, matched - n_changed, t1 - t0, elapsed)
    finally:
        con.unregister("_staged")
