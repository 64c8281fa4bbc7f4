"""The Parquet lake: export then read back equals the store, incremental and atomic exports."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

import feeds.lake as lake_mod
from feeds.ingest import ingest_synthetic
from feeds.lake import LakeError, export_lake, open_lake, partition_path, read_manifest
from feeds.read import daily_bars, intraday_bars
from feeds.resample import resample_intraday
from feeds.stats import store_stats
from feeds.store import open_store, transaction
from feeds.writer import write_bars
from models.inputs import load_daily, load_intraday
from quant.cli import cli
from tests.feeds.helpers import REAL

BAR_KEYS = ("symbol", "frequency", "source", "rows", "first", "last")


def _bars_only(stats: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [tuple(r[k] for k in BAR_KEYS) for r in stats]


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """A file store: synthetic daily bars over two years, 1m bars, and a resampled 5m source."""
    path = tmp_path / "q.duckdb"
    con = open_store(path)
    span = {"start": date(2023, 11, 1), "end": date(2024, 3, 29)}
    ingest_synthetic(con, **span, seed=11, minute_sessions=8, symbol="000300.SH")
    minute = intraday_bars(con, "000300.SH", "1m")
    five = resample_intraday(minute, 5).with_columns(
        pl.lit("5m").alias("frequency"), pl.lit("plain").alias("source")
    )
    with transaction(con):
        write_bars(con, five.select([*minute.columns, "frequency"]), file_sha256=None)
    con.close()
    return path


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Visible partition files -> (inode, mtime_ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.glob("frequency=*/symbol=*/year=*/*.parquet")
    }


def test_export_then_read_back_equals_the_store(store_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    with open_store(store_file, read_only=True) as con:
        report = export_lake(con, root)
        want = store_stats(con)
        as_of = datetime(2024, 3, 28, 3, 0, tzinfo=UTC)
        reads = [
            daily_bars(con, "000300.SH"),
            daily_bars(con, "000300.SH", start=date(2024, 1, 5), as_of=as_of),
            intraday_bars(con, "000300.SH", "1m", as_of=as_of),
            intraday_bars(con, "000300.SH", "5m", source="plain"),
            load_daily(con, "000300.SH"),
            load_intraday(con, "000300.SH", 5),
        ]
    assert sorted(report.written) == sorted(_files(root)) and report.unchanged == 0
    assert {p.split("/")[0] for p in report.written} == {
        "frequency=1d",
        "frequency=1m",
        "frequency=5m",
    }
    assert {p.split("/")[2] for p in report.written} == {"year=2023", "year=2024"}
    with open_lake(root) as lk:  # a node with the lake only
        assert _bars_only(store_stats(lk)) == _bars_only(want)
        got = [
            daily_bars(lk, "000300.SH"),
            daily_bars(lk, "000300.SH", start=date(2024, 1, 5), as_of=as_of),
            intraday_bars(lk, "000300.SH", "1m", as_of=as_of),
            intraday_bars(lk, "000300.SH", "5m", source="plain"),
            load_daily(lk, "000300.SH"),
            load_intraday(lk, "000300.SH", 5),
        ]
    for a, b in zip(reads, got, strict=True):
        assert a.height > 0 and a.equals(b) and a.schema == b.schema
    manifest = read_manifest(root)
    assert (
        sum(f["rows"] for f in manifest["files"].values())
        == report.rows
        == sum(r["rows"] for r in want)
    )
    for rel, f in manifest["files"].items():
        assert set(f) >= {"rows", "bytes", "sha256", "sources"} and f["sources"][0]["min_ts"]
        assert lake_mod.file_sha256(root / rel) == f["sha256"]
    assert lake_mod.verify_lake(root) == []


def test_cli_export_and_lake_reads_match_db_stats(store_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    run = CliRunner().invoke
    res = run(cli, ["--db", str(store_file), "db", "export", "--parquet", str(root), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] > 0
    stats = run(cli, ["--db", str(store_file), "db", "stats", "--json"], env={})
    env = {"QUANT__STORE__LAKE": str(root)}
    from_lake = run(cli, ["--db", str(store_file), "db", "stats", "--json"], env=env)
    lake_only = run(
        cli, ["--db", str(tmp_path / "absent.duckdb"), "db", "stats", "--json"], env=env
    )
    assert stats.exit_code == from_lake.exit_code == lake_only.exit_code == 0
    assert json.loads(from_lake.stdout) == json.loads(stats.stdout)
    assert _bars_only(json.loads(lake_only.stdout)) == _bars_only(json.loads(stats.stdout))
    missing = run(cli, ["db", "stats"], env={"QUANT__STORE__LAKE": str(tmp_path / "nope")})
    assert missing.exit_code != 0 and "does not exist" in missing.output


@pytest.mark.real_data
def test_real_store_round_trips_through_the_lake(
    real_ingest: tuple[Path, object], tmp_path: Path
) -> None:
    if not REAL.exists():
        pytest.skip("real data absent")
    path, _ = real_ingest
    with open_store(path, read_only=True) as con:
        export_lake(con, tmp_path / "lake")
        want = _bars_only(store_stats(con))
    with open_lake(tmp_path / "lake") as lk:
        assert _bars_only(store_stats(lk)) == want
    assert {r[0] for r in want} >= {"000300.SH", "IF.CFE"}


def test_reexport_of_unchanged_data_rewrites_nothing(store_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    with open_store(store_file, read_only=True) as con:
        first = export_lake(con, root)
        before = _files(root)
        again = export_lake(con, root)
    assert again.written == [] and again.unchanged == len(first.written)
    assert _files(root) == before  # same inodes and mtimes: not one file rewritten
    # one new daily bar in 2024: only that partition is rewritten
    with open_store(store_file) as con:
        bar = daily_bars(con, "000300.SH").tail(1)
        bar = bar.with_columns(
            pl.lit("1d").alias("frequency"),
            pl.col("session") + pl.duration(days=3),
            pl.col("ts") + pl.duration(days=3),
        )
        with transaction(con):
            write_bars(con, bar.select([*bar.columns]), file_sha256=None)
        third = export_lake(con, root)
    changed = partition_path("1d", "000300.SH", 2024)
    assert third.written == [changed]
    after = _files(root)
    assert after[changed] != before[changed]
    assert {k: v for k, v in after.items() if k != changed} == {
        k: v for k, v in before.items() if k != changed
    }


def _visible_counts(root: Path) -> dict[str, int]:
    con = duckdb.connect()
    rows = con.execute(
        "SELECT filename, count(*) FROM read_parquet(?, filename = true) GROUP BY ALL",
        [str(root / "frequency=*/symbol=*/year=*/*.parquet")],
    ).fetchall()
    con.close()
    return {str(Path(f).relative_to(root)): n for f, n in rows}


def test_interrupted_export_leaves_no_half_written_partition(
    store_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    with open_store(store_file) as con:
        export_lake(con, root)
        old_manifest = read_manifest(root)
        con.execute("UPDATE intraday_values SET close = close + 1")  # every intraday partition
        con.execute("UPDATE bars_daily SET close = close + 1")
        placed: list[Path] = []
        real_place = lake_mod.place

        def crash_after_one(tmp_file: Path, target: Path) -> None:
            if placed:
                # a writer killed here: the next partition is half-written in the temp folder
                with open(tmp_file, "r+b") as fh:
                    fh.truncate(tmp_file.stat().st_size // 2)
                raise KeyboardInterrupt("killed mid-export")
            placed.append(target)
            real_place(tmp_file, target)

        monkeypatch.setattr(lake_mod, "place", crash_after_one)
        monkeypatch.setattr(lake_mod.shutil, "rmtree", lambda *a, **k: None)  # as if killed
        with pytest.raises(KeyboardInterrupt):
            export_lake(con, root)
        assert list(root.glob(".tmp-*")), "the killed export left its temp folder"
        # every visible partition is a whole file: the old one or the new one, never half
        counts = _visible_counts(root)
        assert counts == {rel: f["rows"] for rel, f in old_manifest["files"].items()}
        assert read_manifest(root) == old_manifest
        with open_lake(root) as lk:
            assert sum(r["rows"] for r in store_stats(lk)) == sum(counts.values())
        monkeypatch.undo()
        resumed = export_lake(con, root)  # the next export completes and cleans up
        want = _bars_only(store_stats(con))
    assert not list(root.glob(".tmp-*"))
    assert set(resumed.written) == set(
        old_manifest["files"]
    )  # the placed one lacks a manifest entry
    assert lake_mod.verify_lake(root) == []
    with open_lake(root) as lk:
        assert _bars_only(store_stats(lk)) == want


def test_bad_symbols_and_empty_lakes_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="cannot name a lake partition"):
        partition_path("1d", "../etc", 2024)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LakeError, match="holds no partitions"):
        open_lake(tmp_path / "empty")
    with pytest.raises(LakeError, match="does not exist"):
        open_lake(tmp_path / "absent")
    assert os.listdir(tmp_path / "empty") == []
