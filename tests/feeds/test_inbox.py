"""A vendor drop folder: complete files are ingested once and archived by their status."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import duckdb
import pytest

from feeds.inbox import scan_inbox
from feeds.read import daily_bars
from feeds.store import open_store

HEADER = "日期,开盘,收盘,最高,最低,成交量,成交额,振幅,涨跌幅,涨跌额,换手率"
ROWS = [
    "2024-01-02,3431.11,3386.35,3433.11,3384.51,115237925,1.6e11,1.4,-1.3,-44.76,0.5",
    "2024-01-03,3382.03,3378.47,3392.53,3368.51,102417411,1.4e11,0.7,-0.2,-7.88,0.4",
]


def _drop(inbox: Path, name: str, rows: list[str], age_s: float = 60.0) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    p = inbox / name
    p.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    t = time.time() - age_s
    os.utime(p, (t, t))
    return p


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    bars = con.execute("SELECT count(*) FROM bars_daily").fetchall()[0][0]
    logs = con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0]
    return bars, logs


def test_a_dropped_file_is_ingested_archived_and_a_second_drop_changes_nothing(
    tmp_path: Path,
) -> None:
    con = open_store(":memory:")
    inbox = tmp_path / "inbox"
    _drop(inbox, "csi300_20240103.csv", ROWS)
    [item] = scan_inbox(con, inbox, settle_s=5)
    assert (item.status, item.rows_loaded) == ("ingested", 2)
    archived = Path(item.archived_to or "")
    assert archived.parent == inbox / "archive" / "ingested" and archived.exists()
    assert not (inbox / "csi300_20240103.csv").exists()
    note = json.loads(archived.with_name(archived.name + ".json").read_text(encoding="utf-8"))
    assert note["status"] == "ingested" and note["rows_loaded"] == 2
    # Stored rows point at the archived file.
    path = con.execute("SELECT path FROM ingest_log").fetchall()[0][0]
    assert path == str(archived)
    assert daily_bars(con, "000300.SH")["close"].to_list() == [3386.35, 3378.47]
    before = _counts(con)
    _drop(inbox, "csi300_20240103.csv", ROWS)  # the vendor sends the same file again
    [again] = scan_inbox(con, inbox, settle_s=5)
    assert again.status == "unchanged"
    assert Path(again.archived_to or "").parent == inbox / "archive" / "unchanged"
    assert _counts(con) == before
    assert scan_inbox(con, inbox, settle_s=5) == []  # archived files are never taken again


def test_a_file_still_being_written_is_left_alone(tmp_path: Path) -> None:
    con = open_store(":memory:")
    inbox = tmp_path / "inbox"
    p = _drop(inbox, "half.csv", ROWS[:1], age_s=0.0)  # just modified: the vendor is writing
    [item] = scan_inbox(con, inbox, settle_s=30)
    assert item.status == "not_ready" and "may still be being written" in item.detail
    assert p.exists() and _counts(con) == (0, 0)
    t = time.time() - 60
    os.utime(p, (t, t))
    assert scan_inbox(con, inbox, settle_s=30)[0].status == "ingested"


def test_a_completion_marker_is_required_when_configured(tmp_path: Path) -> None:
    con = open_store(":memory:")
    inbox = tmp_path / "inbox"
    _drop(inbox, "day.csv", ROWS)
    [item] = scan_inbox(con, inbox, settle_s=0, marker_suffix=".done")
    assert item.status == "not_ready" and "day.csv.done" in item.detail
    (inbox / "day.csv.done").write_text("", encoding="utf-8")
    [item] = scan_inbox(con, inbox, settle_s=0, marker_suffix=".done")
    assert item.status == "ingested"
    assert Path((item.archived_to or "") + ".done").exists()  # archived with its marker
    assert not (inbox / "day.csv.done").exists()


def test_an_unreadable_file_is_archived_as_failed_with_the_reason(tmp_path: Path) -> None:
    con = open_store(":memory:")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = inbox / "bad.csv"
    bad.write_text("foo;bar\n1;2\n", encoding="utf-8")
    t = time.time() - 60
    os.utime(bad, (t, t))
    [item] = scan_inbox(con, inbox, settle_s=5)
    assert item.status == "failed" and "';' delimiters" in item.detail
    assert Path(item.archived_to or "").parent == inbox / "archive" / "failed"
    assert _counts(con) == (0, 0)


def test_a_missing_inbox_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        scan_inbox(open_store(":memory:"), tmp_path / "nope")
