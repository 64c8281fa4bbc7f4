"""Bulk ingest (``feeds.bulk``): reading ahead changes nothing about what lands, and the store is
written in row groups of ``ROW_GROUP_SIZE``."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

import feeds.ingest
from feeds.bulk import FrameLoad, ingest_files, ingest_frames
from feeds.ingest import ingest_file, ingest_frame
from feeds.schema import ROW_GROUP_SIZE
from feeds.store import open_store
from feeds.synthetic import synthetic_market
from feeds.writer import arrow_row_groups
from tests.feeds.helpers import SINA_INDEX_HEADER, TABLES, WIND_HEADER
from tests.feeds.test_ingest import DAILY, MINUTES

WriteCsv = Callable[..., Path]

_KEEP = ("file_sha256", "ingested_at", "quarantined_at", "revised_at", "started_at")


def _contents(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, but the columns that hold ingest times or (frame) paths."""
    with open_store(db, read_only=True) as con:
        out = {}
        for t in TABLES:
            cols = [
                r[0]
                for r in con.execute(f"DESCRIBE {t}").fetchall()
                if not r[0].endswith("_at") and r[0] not in ("path", "ingest_key", *_KEEP)
            ]
            out[t] = con.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY ALL").fetchall()
        return out


def test_files_read_ahead_land_as_one_by_one_with_the_unreadable_one_reported(
    tmp_path: Path, write_csv: WriteCsv
) -> None:
    bad_row = "2023-08-01 12:00:00,3900.0,3901.0,3899.0,3900.5,100"  # lunch break: quarantined
    files = [
        write_csv("wind.csv", [WIND_HEADER, *DAILY]),
        write_csv("garbage.csv", ["no,header,we,know", "1,2,3,4"]),
        write_csv("idx1m.csv", [SINA_INDEX_HEADER, *MINUTES, bad_row]),
        write_csv("wind_again.csv", [WIND_HEADER, *DAILY]),  # same bytes: unchanged
    ]
    one_by_one, bulk = tmp_path / "one.duckdb", tmp_path / "bulk.duckdb"
    with open_store(one_by_one) as con:
        expected = []
        for f in files:
            try:
                expected.append(ingest_file(con, f).status)
            except Exception as exc:  # the one unreadable file
                expected.append(type(exc).__name__)
    with open_store(bulk) as con:
        results = list(ingest_files(con, files))
    assert [r.path for r in results] == files
    got = [r.report.status if r.report else type(r.error).__name__ for r in results]
    assert got == expected == ["ingested", "IngestError", "ingested", "unchanged"]
    assert results[1].error is not None and "garbage.csv" in str(results[1].error)
    assert results[2].report is not None and results[2].report.rows_quarantined == 1
    assert _contents(bulk) == _contents(one_by_one)


def test_frames_validated_ahead_land_as_ingest_frame_does(tmp_path: Path) -> None:
    frames = [
        synthetic_market(date(2024, 1, 2), date(2024, 1, 31), seed=s, symbol=f"S{s}.SH").minute
        for s in (1, 2, 3)
    ]
    broken = frames[1].with_columns(  # two rows with high below low go to quarantine
        pl.when(pl.int_range(pl.len()) < 2).then(0.5).otherwise(pl.col("high")).alias("high")
    )
    loads = [FrameLoad(f, f"frame://{i}", f"k{i}") for i, f in enumerate([frames[0], broken])]
    loads.append(loads[0])  # the same key again: unchanged
    one_by_one, bulk = tmp_path / "one.duckdb", tmp_path / "bulk.duckdb"
    with open_store(one_by_one) as con:
        expected = [ingest_frame(con, x.bars, name=x.name, key=x.key) for x in loads]
    with open_store(bulk) as con:
        got = list(ingest_frames(con, loads))
    assert [r.status for r in got] == ["ingested", "ingested", "unchanged"]
    strip = [{**r.as_dict(), "seconds": None} for r in got]
    assert strip == [{**r.as_dict(), "seconds": None} for r in expected]
    assert got[1].rows_quarantined == 2
    assert _contents(bulk) == _contents(one_by_one)


def test_the_store_is_written_in_row_groups_of_the_configured_size(tmp_path: Path) -> None:
    db = tmp_path / "rg.duckdb"
    m = synthetic_market(date(2021, 1, 4), date(2023, 12, 29), seed=4, minute_sessions=None)
    assert m.minute.height > 2 * ROW_GROUP_SIZE
    with open_store(db) as con:
        ingest_frame(con, m.minute, name="year", key="year")
    with open_store(db) as con:  # a later writer appends in the same size
        ingest_frame(con, m.minute.with_columns(pl.lit("B.SIM").alias("symbol")), name="b", key="b")
        sizes = con.execute(
            "SELECT row_group_id, max(count) FROM pragma_storage_info('intraday_values') "
            "GROUP BY ALL ORDER BY 1"
        ).fetchall()
    full = [n for _, n in sizes]
    assert max(full) == ROW_GROUP_SIZE
    assert sum(n == ROW_GROUP_SIZE for n in full) >= 2 * (m.minute.height // ROW_GROUP_SIZE)


def test_a_nested_writer_in_the_process_shares_the_file_and_the_close_releases_it(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.duckdb"
    outer = open_store(db)
    inner = open_store(db)  # a cursor of the outer connection, not a second attach
    inner.execute("INSERT INTO bar_series VALUES (1, 'A.SH', 'index', '1m', 'x')")
    inner.close()  # the outer stays usable and sees the row
    assert outer.execute("SELECT count(*) FROM bar_series").fetchall() == [(1,)]
    outer.close()
    code = f"from feeds.store import open_store; open_store({str(db)!r}).close()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # another process can write: the file is free
    again = open_store(db)  # and this process attaches it afresh
    assert again.execute("SELECT count(*) FROM bar_series").fetchall() == [(1,)]
    again.close()


def test_a_frame_of_several_chunks_is_cut_into_full_row_groups() -> None:
    m = synthetic_market(date(2021, 1, 4), date(2023, 12, 29), seed=5, minute_sessions=None)
    cut = ROW_GROUP_SIZE + 1_000  # chunks that do not end on a row-group boundary
    chunked = pl.concat([m.minute.head(cut), m.minute.slice(cut)], rechunk=False)
    assert chunked.n_chunks() == 2 and chunked.height > 2 * ROW_GROUP_SIZE
    sizes = [b.num_rows for b in arrow_row_groups(chunked).to_batches()]
    assert sizes[:-1] == [ROW_GROUP_SIZE] * (len(sizes) - 1) and sum(sizes) == chunked.height


def _wal_bytes(db: Path) -> int:
    wal = Path(f"{db}.wal")
    return wal.stat().st_size if wal.exists() else 0


def test_bulk_batches_are_checkpointed_once_enough_rows_landed_since_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = [
        synthetic_market(date(2024, 1, 2), date(2024, 1, 31), seed=s, symbol=f"S{s}.SH").minute
        for s in (1, 2, 3)
    ]
    monkeypatch.setattr(feeds.ingest, "BULK_ROWS", 1)  # every batch counts as a bulk write
    monkeypatch.setattr(feeds.ingest, "CHECKPOINT_ROWS", frames[0].height * 3 // 2)
    db = tmp_path / "ckpt.duckdb"
    with open_store(db) as con:
        walled = []
        for i, f in enumerate(frames):
            ingest_frame(con, f, name=f"f{i}", key=f"f{i}")
            walled.append(_wal_bytes(db) > 0)
    assert walled == [True, False, True]  # the second batch crossed the threshold


def test_committed_batches_past_the_last_checkpoint_survive_a_killed_process(
    tmp_path: Path,
) -> None:
    db = tmp_path / "killed.duckdb"
    code = f"""
import os, signal
from datetime import date
from feeds.ingest import ingest_frame
from feeds.store import open_store
from feeds.synthetic import synthetic_market
con = open_store({str(db)!r})
for s in (1, 2):
    m = synthetic_market(date(2021, 1, 4), date(2022, 12, 30), seed=s, symbol=f"S{{s}}.SH")
    ingest_frame(con, m.minute, name=f"f{{s}}", key=f"f{{s}}")
print(_ := os.path.getsize({str(db)!r} + ".wal"), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert int(done.stdout.split()[-1]) > 0  # the batches were not checkpointed
    m = synthetic_market(date(2021, 1, 4), date(2022, 12, 30), seed=1, symbol="S1.SH")
    with open_store(db) as con:
        stored = con.execute("SELECT count(*) FROM intraday_values").fetchall()[0][0]
        logged = con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0]
        again = ingest_frame(con, m.minute, name="again", key="again")
    assert (stored, logged) == (2 * m.minute.height, 2)
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
