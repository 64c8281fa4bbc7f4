"""Published snapshots: readers see a consistent copy and re-opening shows the newest one."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from feeds.read import daily_bars
from feeds.snapshot import open_snapshot, publish_snapshot, snapshot_path, snapshot_version
from feeds.store import open_store, transaction
from feeds.synthetic import SYNTHETIC_SYMBOL, synthetic_market
from feeds.writer import write_bars


def _write(con, start: date, end: date) -> None:  # type: ignore[no-untyped-def]
    with transaction(con):
        write_bars(con, synthetic_market(start, end, seed=1).daily, file_sha256=None)


def test_reopen_in_the_same_process_sees_the_new_snapshot(tmp_path: Path) -> None:
    store = tmp_path / "q.duckdb"
    writer = open_store(store)
    _write(writer, date(2024, 1, 2), date(2024, 1, 2))
    publish_snapshot(writer, store)
    v1 = snapshot_version(store)
    old = open_snapshot(store)  # held open, as a long-running reader would
    assert daily_bars(old, SYNTHETIC_SYMBOL).height == 1
    _write(writer, date(2024, 1, 3), date(2024, 1, 5))
    publish_snapshot(writer, store)
    assert snapshot_version(store) != v1
    assert daily_bars(open_snapshot(store), SYNTHETIC_SYMBOL).height == 4
    assert daily_bars(old, SYNTHETIC_SYMBOL).height == 1  # the old reader keeps its consistent view
    assert not list(tmp_path.glob("*.reader-*"))  # the one-off links are gone


def test_missing_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no published snapshot"):
        open_snapshot(tmp_path / "q.duckdb")
    assert snapshot_path(tmp_path / "q.duckdb").name == "q.snapshot.duckdb"
