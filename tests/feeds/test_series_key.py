"""Intraday rows under an integer series key: batches of several series, corrections across
them, and stores from before the key (a ``bars_intraday`` table) migrated on open."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from feeds.ingest import ingest_frame
from feeds.store import open_store
from feeds.synthetic import synthetic_market
from tests.feeds.helpers import TABLES

_LEGACY_TABLE = """
CREATE TABLE bars_intraday (
    symbol VARCHAR NOT NULL, kind VARCHAR NOT NULL, frequency VARCHAR NOT NULL,
    source VARCHAR NOT NULL, session DATE NOT NULL, ts TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
    volume DOUBLE, amount DOUBLE, open_interest DOUBLE, file_sha256 VARCHAR,
    ingested_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (symbol, frequency, source, ts)
)"""


def _minutes(symbol: str, seed: int) -> pl.DataFrame:
    m = synthetic_market(date(2024, 1, 2), date(2024, 1, 12), seed=seed, symbol=symbol)
    return m.minute


def _bars(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT * FROM bars_intraday ORDER BY symbol, ts").pl()


def test_a_batch_of_two_series_lands_under_two_ids_and_reads_back() -> None:
    con = open_store(":memory:")
    a, b = _minutes("AAA.SH", 1), _minutes("BBB.SH", 2)
    rep = ingest_frame(con, pl.concat([a, b]), name="two", key="two")
    assert rep.rows_inserted == a.height + b.height
    assert con.execute("SELECT count(*) FROM bar_series").fetchall() == [(2,)]
    got = _bars(con).drop("file_sha256", "ingested_at")
    assert got.equals(pl.concat([a, b]).sort("symbol", "ts").select(got.columns))
    again = ingest_frame(con, pl.concat([b, a]), name="two again", key="two again")
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    assert con.execute("SELECT count(*) FROM bar_series").fetchall() == [(2,)]


def test_interleaved_series_land_grouped_by_series_in_runs_under_their_pinned_codecs(
    tmp_path: Path,
) -> None:
    # a file of several symbols minute by minute: the rows land grouped by series, so the
    # series column stays in runs (its codec is RLE, feeds.schema)
    con = open_store(tmp_path / "s.duckdb")
    a, b, c = _minutes("AAA.SH", 1), _minutes("BBB.SH", 2), _minutes("CCC.SH", 3)
    mixed = pl.concat([a, b, c]).sort("ts", "symbol")
    rep = ingest_frame(con, mixed, name="mixed", key="mixed")
    assert rep.rows_inserted == mixed.height
    ids = con.sql("SELECT series_id FROM intraday_values ORDER BY rowid").pl()["series_id"]
    assert ids.rle_id().max() == 2  # three runs, one per series
    assert ids.head(a.height).unique().to_list() == [ids[0]]
    got = _bars(con).drop("file_sha256", "ingested_at")
    assert got.equals(mixed.sort("symbol", "ts").select(got.columns))
    (ddl,) = con.execute(
        "SELECT sql FROM duckdb_tables() WHERE table_name = 'intraday_values'"
    ).fetchall()[0]
    for column, codec in [("series_id", "RLE"), ("ts", "BitPacking"), ('"close"', "ALP")]:
        assert re.search(rf"[(, ]{column} [A-Z ]+ USING COMPRESSION {codec}\b", ddl), column
    con.execute("CHECKPOINT")
    stored = con.sql(
        "SELECT column_name, list(DISTINCT compression) AS c FROM pragma_storage_info("
        "'intraday_values') WHERE segment_type <> 'VALIDITY' GROUP BY ALL"
    ).pl()
    codecs = dict(zip(stored["column_name"], stored["c"].to_list(), strict=True))
    assert codecs["series_id"] == ["RLE"] and codecs["close"] == ["ALP"]
    con.close()


def test_a_correction_across_series_updates_and_records_only_the_changed_rows() -> None:
    con = open_store(":memory:")
    a, b = _minutes("AAA.SH", 1), _minutes("BBB.SH", 2)
    ingest_frame(con, pl.concat([a.head(100), b.head(100)]), name="first", key="first")
    fixed_a = a.head(120).with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.col("close") + 0.5)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    # B's rows arrive again under another kind: the same key, so no new rows; the one whose
    # values change takes the new kind (as a corrected row always did)
    kind_b = b.head(100).with_columns(
        pl.lit("etf").alias("kind"),
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.col("volume") + 1.0)
        .otherwise(pl.col("volume"))
        .alias("volume"),
    )
    rep = ingest_frame(con, pl.concat([fixed_a, kind_b]), name="second", key="second")
    assert (rep.rows_inserted, rep.rows_updated) == (20, 2)
    revs = con.execute(
        "SELECT symbol, field, old_value, new_value FROM bar_revisions ORDER BY symbol"
    ).fetchall()
    assert revs == [
        ("AAA.SH", "close", a["close"][5], a["close"][5] + 0.5),
        ("BBB.SH", "volume", b["volume"][7], b["volume"][7] + 1.0),
    ]
    stored = _bars(con)
    assert stored.height == 120 + 100
    kinds = stored.filter(pl.col("symbol") == "BBB.SH")["kind"].value_counts(sort=True)
    assert kinds.rows() == [("index", 99), ("etf", 1)]


def test_a_store_with_the_old_intraday_table_is_migrated_and_stays_idempotent(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.duckdb"
    bars = _minutes("AAA.SH", 3)
    with duckdb.connect(str(db)) as old:
        old.execute("SET TimeZone = 'UTC'")
        old.execute(_LEGACY_TABLE)
        old.register("_b", bars.to_arrow())
        old.execute("INSERT INTO bars_intraday SELECT *, 'sha', now() FROM _b")
    with open_store(db, read_only=True) as ro:  # a reader leaves the old layout alone
        assert ro.execute("SELECT count(*) FROM bars_intraday").fetchall() == [(bars.height,)]
    con = open_store(db)
    kinds = dict(
        con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall()
    )
    assert kinds["bars_intraday"] == "VIEW"
    assert {t for t in TABLES if t in kinds} == set(TABLES)
    got = _bars(con)
    assert got.drop("file_sha256", "ingested_at").equals(bars.select(got.columns[:-2]))
    assert set(got["file_sha256"]) == {"sha"}
    rep = ingest_frame(con, bars, name="again", key="again")
    assert (rep.rows_inserted, rep.rows_updated) == (0, 0)
    con.close()
    with open_store(db) as reopened:  # migrated once
        assert reopened.execute("SELECT count(*) FROM bars_intraday").fetchall() == [(bars.height,)]


_SERIES_KEY_VALUES = """
CREATE TABLE intraday_values (
    series_id INTEGER NOT NULL, session DATE NOT NULL, ts TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
    volume DOUBLE, amount DOUBLE, open_interest DOUBLE, file_sha256 VARCHAR,
    ingested_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE bar_series (
    series_id INTEGER PRIMARY KEY, symbol VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    frequency VARCHAR NOT NULL, source VARCHAR NOT NULL, UNIQUE (symbol, kind, frequency, source)
);
CREATE VIEW bars_intraday AS
SELECT s.symbol, s.kind, s.frequency, s.source, b.session, b.ts, b.open, b.high, b.low, b.close,
       b.volume, b.amount, b.open_interest, b.file_sha256, b.ingested_at
FROM intraday_values b JOIN bar_series s USING (series_id);
"""


def test_a_store_with_the_hash_on_every_row_moves_to_batch_ids_and_keeps_provenance(
    tmp_path: Path,
) -> None:
    db = tmp_path / "series_key.duckdb"
    a, b = _minutes("AAA.SH", 1), _minutes("BBB.SH", 2)
    with duckdb.connect(str(db)) as old:
        old.execute("SET TimeZone = 'UTC'")
        old.execute(_SERIES_KEY_VALUES)
        old.execute("INSERT INTO bar_series VALUES (1, 'AAA.SH', 'index', '1m', 'synthetic')")
        old.execute("INSERT INTO bar_series VALUES (2, 'BBB.SH', 'index', '1m', 'synthetic')")
        cols = "session, ts, open, high, low, close, volume, amount, open_interest"
        for sid, frame, sha, at in (
            (1, a, "sha-a", "2024-02-01 00:00:00+00"),
            (2, b.head(50), "sha-b1", "2024-02-02 00:00:00+00"),
            (2, b.slice(50), None, "2024-02-03 00:00:00+00"),  # an old frame load: no hash
        ):
            old.register("_b", frame.to_arrow())
            old.execute(
                f"INSERT INTO intraday_values SELECT {sid}, {cols}, ?, ?::TIMESTAMPTZ FROM _b",
                [sha, at],
            )
        before = _bars(old)
    con = open_store(db)
    after = _bars(con)
    assert after.equals(before)  # every row, its file's hash and its ingest time kept
    assert con.execute("SELECT count(*) FROM bar_batches").fetchall() == [(3,)]
    columns = {r[0] for r in con.execute("DESCRIBE intraday_values").fetchall()}
    assert "batch_id" in columns and not {"file_sha256", "ingested_at"} & columns
    fixed = b.head(10).with_columns((pl.col("volume") + 1.0).alias("volume"))
    rep = ingest_frame(con, fixed, name="fix", key="fix")
    assert (rep.rows_inserted, rep.rows_updated) == (0, 10)
    now = _bars(con).filter(pl.col("symbol") == "BBB.SH")
    assert now["file_sha256"].head(10).n_unique() == 1  # the correction's own batch
    assert now["file_sha256"][0] not in {"sha-b1", None}
    assert now["file_sha256"].slice(10, 40).to_list() == ["sha-b1"] * 40
    con.close()
    with open_store(db) as reopened:  # migrated once
        assert reopened.execute("SELECT count(*) FROM bar_batches").fetchall() == [(4,)]
