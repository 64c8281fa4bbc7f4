"""Bulk upsert of validated bars into the store, recording what a corrected file changed.

Callers wrap ``write_bars`` in ``feeds.store.transaction`` so a file lands whole or not at all.
Keys are kept unique by the writer, not by an index: each batch is semi-joined against the
stored keys (``keys_s``), restricted to the batch's series and time span so DuckDB's zone maps
skip the row groups of other series; new rows go in through DuckDB's Arrow scan (``insert_s``).
Intraday rows are stored under an integer series id (``bar_series``) and an integer batch id
(``bar_batches``: the file's hash and the ingest time of the write); readers see the
``bars_intraday`` view.  The batch's few (symbol, kind, frequency, source) are resolved to ids
once and only numbers cross into DuckDB.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl
import pyarrow as pa

from feeds.schema import BAR_COLUMNS, BAR_SCHEMA, ROW_GROUP_SIZE, VALUE_FIELDS
from feeds.series import Factorized, factorize


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    updated: int
    unchanged: int
    keys_s: float = 0.0  # finding which keys are stored (the duplicate check)
    insert_s: float = 0.0  # inserting new rows, updating changed ones, recording revisions
    # no intraday row of the batch's series was stored in the batch's span before: after the
    # write, the batch's intraday rows are all the store holds there
    fresh: bool = False


def arrow_row_groups(frame: pl.DataFrame) -> pa.Table:
    """``frame`` as Arrow in record batches of one store row group each (zero-copy slices of
    a frame of one chunk; one of several chunks is copied into one first).

    DuckDB's Arrow scan hands out one batch per task, so an insert from a one-chunk table runs
    on one thread; cut like this, the insert compresses row groups on every thread, in order.
    Batches follow chunk boundaries, so a frame of several chunks would leave a partial row
    group at each (for the checkpoint's vacuum to merge later, at a cost).
    """
    table = frame.rechunk().to_arrow()
    batches = table.to_batches(max_chunksize=ROW_GROUP_SIZE)
    return pa.Table.from_batches(batches, schema=table.schema)


def _conform(bars: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars frame lacks columns {missing}")
    picked = bars.select(BAR_COLUMNS)
    if all(picked.schema[c] == t for c, t in BAR_SCHEMA.items()):
        return picked  # validated bars arrive conformed: no cast to plan
    return picked.cast(BAR_SCHEMA)  # type: ignore[arg-type]


def write_bars(
    con: duckdb.DuckDBPyConnection,
    bars: pl.DataFrame,
    *,
    file_sha256: str | None,
    ingested_at: datetime | None = None,
    series: Factorized | None = None,
) -> WriteResult:
    """Upsert ``bars`` (canonical schema; daily and intraday rows may be mixed).

    New keys are inserted; existing keys whose values differ are updated and every changed field
    is written to ``bar_revisions``; identical rows are left alone (so re-ingest is a no-op).
    ``series``: ``factorize(bars, SERIES_COLUMNS)`` (each row's series as a code into the
    distinct series), when the caller has it (computed while the previous batch landed); else
    the series are found here.
    """
    at = ingested_at or datetime.now(UTC)
    inserted = updated = unchanged = 0
    keys_s = insert_s = 0.0
    fresh = True
    values = None if series is None else series.values
    for daily, part in zip((True, False), split_daily(_conform(bars), values), strict=True):
        if part.is_empty():
            continue
        if daily:
            r = _upsert_daily(con, part, file_sha256=file_sha256, at=at)
        else:
            # the codes hold for the intraday rows when they are all the rows
            whole = series if series is not None and part.height == bars.height else None
            r = _upsert_intraday(con, part, file_sha256=file_sha256, at=at, series=whole)
        inserted += r.inserted
        updated += r.updated
        unchanged += r.unchanged
        keys_s += r.keys_s
        insert_s += r.insert_s
        fresh = r.fresh if not daily else fresh
    return WriteResult(inserted, updated, unchanged, keys_s, insert_s, fresh)


def split_daily(
    bars: pl.DataFrame, series: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(daily rows, intraday rows) of ``bars``; no copy when all rows are of one kind, and no
    pass over them either when their distinct ``series`` (``feeds.series.distinct``) are given."""
    freqs = None if series is None else set(series["frequency"].to_list())
    if freqs is not None and "1d" not in freqs:
        return bars.clear(), bars
    if freqs == {"1d"}:
        return bars, bars.clear()
    n_daily = int(bars.select((pl.col("frequency") == "1d").sum()).item())
    if n_daily == 0:
        return bars.clear(), bars
    if n_daily == bars.height:
        return bars, bars.clear()
    is_daily = pl.col("frequency") == "1d"
    return bars.filter(is_daily), bars.filter(~is_daily)


_DIFFERS = " OR ".join(f"t.{f} IS DISTINCT FROM s.{f}" for f in VALUE_FIELDS)


def _stage_changes(
    con: duckdb.DuckDBPyConnection, keys: str, stored: str, on: str, params: list[object]
) -> int:
    """``_changed``: the staged rows whose stored twin (``stored t`` joined ``on``) differs in a
    value field, with ``keys`` and every field's old and new value; returns how many."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _changed AS SELECT {keys}, "
        + ", ".join(f"t.{f} AS old_{f}, s.{f} AS new_{f}" for f in VALUE_FIELDS)
        + f" FROM _staged s JOIN {stored} t ON {on} WHERE {_DIFFERS}",
        params,
    ).fetchall()
    return int(con.execute("SELECT count(*) FROM _changed").fetchall()[0][0])


def _insert_new(
    con: duckdb.DuckDBPyConnection,
    insert_new: str,
    stored: str,
    on: str,
    params: list[object],
    n_new: int,
) -> int:
    """Drop ``_changed``; insert the staged rows with no stored twin; returns their count."""
    con.execute("DROP TABLE _changed").fetchall()
    if n_new:
        con.execute(insert_new + f" ANTI JOIN {stored} t ON {on}", params).fetchall()
    return n_new


def _record_revisions(
    con: duckdb.DuckDBPyConnection, file_sha256: str | None, at: datetime
) -> None:
    """Every changed field of the rows in ``_changed``, recorded before they are overwritten."""
    for f in VALUE_FIELDS:
        con.execute(
            f"INSERT INTO bar_revisions SELECT symbol, frequency, source, ts, '{f}', "
            f"old_{f}, new_{f}, ?, ? FROM _changed WHERE old_{f} IS DISTINCT FROM new_{f}",
            [file_sha256 or "", at],
        ).fetchall()


_MAX_LISTED = 64  # symbols named in the zone-map filter; more: the time span alone


def _stored_span(part: pl.DataFrame) -> tuple[str, list[object]]:
    """A filter on ``bars_daily`` that keeps every row the batch could match (and few others)."""
    lo, hi = part["session"].min(), part["session"].max()
    cond = "t.session BETWEEN ? AND ?"
    params: list[object] = [lo, hi]
    symbols = part["symbol"].unique().to_list()
    if len(symbols) <= _MAX_LISTED:
        cond += f" AND t.symbol IN ({', '.join('?' for _ in symbols)})"
        params += symbols
    return cond, params


def _upsert_daily(
    con: duckdb.DuckDBPyConnection,
    part: pl.DataFrame,
    *,
    file_sha256: str | None,
    at: datetime,
) -> WriteResult:
    table = "bars_daily"
    keys = ["symbol", "source", "session"]
    cols = [c for c in BAR_COLUMNS if c != "frequency"]
    staged = part.select(cols)
    con.register("_staged", arrow_row_groups(staged))
    try:
        t0 = time.perf_counter()
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        insert_new = (
            f"INSERT INTO {table} ({', '.join(cols)}, file_sha256, ingested_at) "
            f"SELECT {', '.join('s.' + c for c in cols)}, ?, ? FROM _staged s"
        )
        span, span_params = _stored_span(staged)
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
        n_changed = _stage_changes(
            con, "s.symbol, '1d' AS frequency, s.source, s.ts", stored, on, span_params
        )
        if n_changed:
            _record_revisions(con, file_sha256, at)
            setters = ", ".join(f"{f} = s.{f}" for f in (*VALUE_FIELDS, "kind"))
            con.execute(
                f"UPDATE {table} t SET {setters}, file_sha256 = ?, ingested_at = ? "
                f"FROM _staged s WHERE {on} AND ({_DIFFERS})",
                [file_sha256, at],
            ).fetchall()
        n_new = _insert_new(
            con, insert_new, stored, on, [file_sha256, at, *span_params], staged.height - matched
        )
        return WriteResult(n_new, n_changed, matched - n_changed, t1 - t0, time.perf_counter() - t1)
    finally:
        con.unregister("_staged")


SERIES_COLUMNS = ["symbol", "kind", "frequency", "source"]
KEY_SERIES = ["symbol", "frequency", "source"]  # with ts, the bar key (kind is not in it)
_NUMERIC = ["session", "ts", *VALUE_FIELDS]


def stored_intraday(con: duckdb.DuckDBPyConnection, symbols: list[str]) -> tuple[str, list[object]]:
    """A subquery of the stored intraday rows of ``symbols`` (the ``bars_intraday`` columns but
    the batch's ``file_sha256`` and ``ingested_at``) filtered by their series ids as constants,
    so DuckDB's zone maps skip the row groups of other series; returns (sql, params)."""
    marks = ", ".join("?" for _ in symbols)
    ids = [
        r[0]
        for r in con.execute(
            f"SELECT series_id FROM bar_series WHERE symbol IN ({marks})", symbols
        ).fetchall()
    ]
    cols = ", ".join(f"b.{c}" for c in _NUMERIC)
    where = f"b.series_id IN ({', '.join('?' for _ in ids)})" if ids else "false"
    sql = (
        f"(SELECT {', '.join('k.' + c for c in SERIES_COLUMNS)}, {cols} FROM intraday_values b "
        f"JOIN bar_series k USING (series_id) WHERE {where})"
    )
    return sql, list(ids)


def series_ids(
    con: duckdb.DuckDBPyConnection, series: pl.DataFrame
) -> tuple[pl.DataFrame, list[int]]:
    """``series`` (distinct symbol, kind, frequency, source) with their ``series_id``, new ones
    registered in ``bar_series`` (inside the caller's transaction); and the ids of the stored
    series that share a key (symbol, frequency, source) with one of them (the same bars under
    another kind), as they were before this registration: a new series has no stored rows.

    One lookup by symbol answers both: a batch holds a few series, so the matching is done on
    the fetched rows rather than by joins against a registered frame."""
    wanted = [tuple(r) for r in series.select(SERIES_COLUMNS).iter_rows()]
    symbols = sorted({w[0] for w in wanted})
    marks = ", ".join("?" for _ in symbols)
    have = {
        tuple(r[1:]): int(r[0])
        for r in con.execute(
            f"SELECT series_id, {', '.join(SERIES_COLUMNS)} FROM bar_series "
            f"WHERE symbol IN ({marks})",
            symbols,
        ).fetchall()
    }
    keys = {(w[0], w[2], w[3]) for w in wanted}
    sharing = sorted(sid for (sym, _, freq, src), sid in have.items() if (sym, freq, src) in keys)
    missing = [w for w in dict.fromkeys(wanted) if w not in have]
    if missing:
        top = int(
            con.execute("SELECT coalesce(max(series_id), 0) FROM bar_series").fetchall()[0][0]
        )
        new = {m: top + i + 1 for i, m in enumerate(missing)}
        # one statement for all of them (``executemany`` runs one per series)
        rows = ", ".join("(?, ?, ?, ?, ?)" for _ in new)
        params = [x for m, v in new.items() for x in (v, *m)]
        con.execute(f"INSERT INTO bar_series VALUES {rows}", params).fetchall()
        have.update(new)
    ids = pl.DataFrame(
        [(have[w], *w) for w in dict.fromkeys(wanted)],
        schema={"series_id": pl.Int32, **{c: pl.String for c in SERIES_COLUMNS}},
        orient="row",
    )
    return ids, sharing


def new_batch(con: duckdb.DuckDBPyConnection, file_sha256: str | None, at: datetime) -> int:
    """Register one write in ``bar_batches`` (inside the caller's transaction); its id."""
    (batch_id,) = con.execute(
        "INSERT INTO bar_batches SELECT (SELECT coalesce(max(batch_id), 0) + 1 FROM bar_batches), "
        "?, ? RETURNING batch_id",
        [file_sha256, at],
    ).fetchall()[0]
    return int(batch_id)


def _upsert_intraday(
    con: duckdb.DuckDBPyConnection,
    part: pl.DataFrame,
    *,
    file_sha256: str | None,
    at: datetime,
    series: Factorized | None = None,
) -> WriteResult:
    """``_upsert_daily`` for the intraday rows: key check, inserts and corrections by series id;
    the rows written carry one new batch id (``bar_batches``: the file's hash and the time).
    ``series``: ``factorize(part, SERIES_COLUMNS)``, when the caller has it."""
    t0 = time.perf_counter()
    batch = new_batch(con, file_sha256, at)
    f = factorize(part, SERIES_COLUMNS) if series is None else series
    ids, sharing = series_ids(con, f.values)
    if ids.height == 1:  # the usual batch: one series
        staged = part.with_columns(pl.lit(ids["series_id"][0], pl.Int32).alias("series_id"))
    else:  # each row's id by its series' code: a join of the few distinct series, not the rows
        id_of = f.values.join(ids, on=SERIES_COLUMNS, how="left", maintain_order="left")
        staged = part.with_columns(id_of["series_id"].gather(f.codes).alias("series_id"))
        if not f.blocks:  # series interleaved (a file of many symbols, minute by minute)
            # landed grouped by series, in their order: the series, session and batch columns
            # stay in runs, as their codec (``feeds.schema``, RLE) and the zone maps want them
            staged = staged.sort(f.codes, maintain_order=True)
    lo, hi = staged["session"].min(), staged["session"].max()
    # the batch's own ids too: a corrected row may move to a series the batch registered
    in_span = sorted({*sharing, *ids["series_id"].to_list()})
    span = f"b.session BETWEEN ? AND ? AND b.series_id IN ({', '.join('?' for _ in in_span)})"
    span_params: list[object] = [lo, hi, *in_span]
    candidates = (
        con.execute(f"SELECT count(*) FROM intraday_values b WHERE {span}", span_params).fetchall()[
            0
        ][0]
        if sharing
        else 0
    )
    values = ", ".join(f"s.{c}" for c in _NUMERIC)
    insert_new = f"INSERT INTO intraday_values SELECT s.series_id, {values}, ? FROM _staged s"
    if candidates == 0:  # bulk fast path: only numbers cross into DuckDB
        con.register("_staged", arrow_row_groups(staged.select("series_id", *_NUMERIC)))
        try:
            t1 = time.perf_counter()
            con.execute(insert_new, [batch]).fetchall()
        finally:
            con.unregister("_staged")
        return WriteResult(staged.height, 0, 0, t1 - t0, time.perf_counter() - t1, fresh=True)
    con.register("_staged", arrow_row_groups(staged.select("series_id", *KEY_SERIES, *_NUMERIC)))
    try:
        stored = (
            f"(SELECT b.*, {', '.join('k.' + c for c in KEY_SERIES)} FROM intraday_values b "
            f"JOIN bar_series k USING (series_id) WHERE {span})"
        )
        on = " AND ".join(f"t.{k} = s.{k}" for k in (*KEY_SERIES, "ts"))
        matched = con.execute(
            f"SELECT count(*) FROM _staged s SEMI JOIN {stored} t ON {on}", span_params
        ).fetchall()[0][0]
        t1 = time.perf_counter()
        n_changed = _stage_changes(
            con,
            "s.symbol, s.frequency, s.source, s.ts, t.series_id AS old_series, "
            "s.series_id AS new_series",
            stored,
            on,
            span_params,
        )
        if n_changed:
            _record_revisions(con, file_sha256, at)
            setters = ", ".join(f"{f} = c.new_{f}" for f in VALUE_FIELDS)
            con.execute(
                f"UPDATE intraday_values t SET {setters}, series_id = c.new_series, "
                "batch_id = ? FROM _changed c WHERE t.series_id = c.old_series AND t.ts = c.ts",
                [batch],
            ).fetchall()
        n_new = _insert_new(
            con, insert_new, stored, on, [batch, *span_params], staged.height - matched
        )
        return WriteResult(n_new, n_changed, matched - n_changed, t1 - t0, time.perf_counter() - t1)
    finally:
        con.unregister("_staged")
