"""Idempotent, atomic ingest: same bytes are a no-op, corrections are recorded, crashes leave
the store as it was."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import feeds.ingest
from feeds.calendar import trading_days
from feeds.ingest import ingest_file, ingest_synthetic
from feeds.store import open_store
from tests.feeds.helpers import SINA_INDEX_HEADER, TABLES, WIND_HEADER, counts

WriteCsv = Callable[..., Path]

DAILY = [
    "2024-01-02,3400.0,3410.0,3390.0,3405.0,12.1,1000,12100",
    "2024-01-03,3405.0,3420.0,3400.0,3415.0,12.2,1100,13420",
    "2024-01-04,3415.0,3418.0,3380.0,3385.0,12.0,900,10800",
]
MINUTES = [
    "2023-08-01 09:31:00,3900.0,3901.0,3899.0,3900.5,100",
    "2023-08-01 09:32:00,3900.5,3902.0,3900.0,3901.5,120",
    "2023-08-01 09:33:00,3901.5,3903.0,3901.0,3902.5,110",
]


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in TABLES}


def test_same_bytes_twice_is_a_no_op(store: duckdb.DuckDBPyConnection, write_csv: WriteCsv) -> None:
    p = write_csv("wind.csv", [WIND_HEADER, *DAILY])
    first = ingest_file(store, p)
    assert (first.status, first.rows_inserted, first.rows_updated) == ("ingested", 3, 0)
    before = _snapshot(store)
    again = ingest_file(store, p)
    assert again.status == "unchanged"
    assert again.sha256 == first.sha256
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    assert _snapshot(store) == before


def test_same_bytes_under_another_name_is_a_no_op(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    ingest_file(store, write_csv("a.csv", [WIND_HEADER, *DAILY]))
    before = _snapshot(store)
    assert ingest_file(store, write_csv("b.csv", [WIND_HEADER, *DAILY])).status == "unchanged"
    assert _snapshot(store) == before


def test_corrected_file_updates_the_row_and_records_the_revision(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv("wind.csv", [WIND_HEADER, *DAILY])
    ingest_file(store, p)
    fixed = [DAILY[0], DAILY[1].replace(",3415.0,12.2", ",3416.0,12.2"), DAILY[2]]
    write_csv("wind.csv", [WIND_HEADER, *fixed])
    rep = ingest_file(store, p)
    assert (rep.status, rep.rows_inserted, rep.rows_updated) == ("ingested", 0, 1)
    assert store.execute("SELECT session, close FROM bars_daily ORDER BY session").fetchall() == [
        (date(2024, 1, 2), 3405.0),
        (date(2024, 1, 3), 3416.0),
        (date(2024, 1, 4), 3385.0),
    ]
    assert store.execute(
        "SELECT symbol, frequency, source, ts, field, old_value, new_value, file_sha256 "
        "FROM bar_revisions"
    ).fetchall() == [
        (
            "000300.SH",
            "1d",
            "wind",
            datetime(2024, 1, 3, 7, 0, tzinfo=UTC),  # 15:00 Shanghai
            "close",
            3415.0,
            3416.0,
            rep.sha256,
        )
    ]
    # the corrected row carries the new file's hash; untouched rows keep the old one
    hashes = dict(store.execute("SELECT session, file_sha256 FROM bars_daily").fetchall())
    assert hashes[date(2024, 1, 3)] == rep.sha256
    assert hashes[date(2024, 1, 2)] != rep.sha256
    assert counts(store)["ingest_log"] == 2


def test_corrected_intraday_file_records_each_changed_field(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv("idx1m.csv", [SINA_INDEX_HEADER, *MINUTES])
    ingest_file(store, p)
    fixed = [MINUTES[0], "2023-08-01 09:32:00,3900.5,3902.5,3900.0,3901.5,125", MINUTES[2]]
    rep = ingest_file(store, write_csv("idx1m.csv", [SINA_INDEX_HEADER, *fixed, MINUTES[2][:-3]]))
    # the extra truncated line is a new bad row; one bar updated in two fields
    assert (rep.rows_inserted, rep.rows_updated) == (0, 1)
    assert store.execute(
        "SELECT frequency, field, old_value, new_value FROM bar_revisions ORDER BY field"
    ).fetchall() == [("1m", "high", 3902.0, 3902.5), ("1m", "volume", 120.0, 125.0)]


def test_extended_file_inserts_only_the_new_rows(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv("wind.csv", [WIND_HEADER, *DAILY[:2]])
    ingest_file(store, p)
    rep = ingest_file(store, write_csv("wind.csv", [WIND_HEADER, *DAILY]))
    assert (rep.rows_loaded, rep.rows_inserted, rep.rows_updated) == (3, 1, 0)
    assert counts(store)["bar_revisions"] == 0


# ---------------------------------------------------------------- idempotence as a law

_SESSIONS = trading_days(date(2024, 1, 2), date(2024, 3, 29))
_price = st.floats(min_value=1.0, max_value=10_000.0, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def _wind_rows(draw: st.DrawFn) -> list[str]:
    days = draw(st.lists(st.sampled_from(_SESSIONS), min_size=1, max_size=8, unique=True))
    rows = []
    for d in sorted(days):
        o, c = draw(_price), draw(_price)
        hi = max(o, c) + draw(st.floats(0, 50).map(lambda x: round(x, 3)))
        lo = max(min(o, c) - draw(st.floats(0, 50).map(lambda x: round(x, 3))), 0.001)
        vol = draw(st.integers(0, 10**9))
        rows.append(f"{d.isoformat()},{o},{hi},{lo},{c},1.0,{vol},{vol * 11}")
    return rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_wind_rows(), trailing_blank=st.booleans())
def test_reingest_is_idempotent(
    tmp_path_factory: pytest.TempPathFactory, rows: list[str], trailing_blank: bool
) -> None:
    """Ingest twice: same bytes are 'unchanged'; other bytes with the same bars change nothing."""
    path = tmp_path_factory.mktemp("idem") / "wind.csv"
    path.write_text("\n".join([WIND_HEADER, *rows]) + "\n")
    con = open_store(":memory:")
    first = ingest_file(con, path)
    assert first.rows_inserted == first.rows_loaded == len(rows)
    before = _snapshot(con)
    assert ingest_file(con, path).status == "unchanged"
    assert _snapshot(con) == before
    # same bars, different bytes (CRLF, maybe a trailing blank line): new hash, no row changes
    path.write_text("\r\n".join([WIND_HEADER, *rows]) + ("\r\n\r\n" if trailing_blank else "\r\n"))
    rep = ingest_file(con, path)
    assert rep.status == "ingested"
    assert (rep.rows_inserted, rep.rows_updated, rep.rows_loaded) == (0, 0, len(rows))
    after = _snapshot(con)
    assert after["bars_daily"] == before["bars_daily"]
    assert after["bar_revisions"] == []
    con.close()


def test_synthetic_ingest_is_idempotent(store: duckdb.DuckDBPyConnection) -> None:
    kw = {"start": date(2024, 1, 2), "end": date(2024, 1, 12), "seed": 3, "minute_sessions": 2}
    first = ingest_synthetic(store, **kw)
    assert first.rows_inserted == 9 + 2 * 240
    before = _snapshot(store)
    assert ingest_synthetic(store, **kw).status == "unchanged"
    assert _snapshot(store) == before


# ---------------------------------------------------------------- crash mid-file


def test_exception_inside_the_transaction_rolls_back_everything(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_file(store, write_csv("wind.csv", [WIND_HEADER, *DAILY]))
    bad_row = "2023-08-01 12:00:00,3900.0,3901.0,3899.0,3900.5,100"  # goes to quarantine first
    p = write_csv("idx1m.csv", [SINA_INDEX_HEADER, *MINUTES, bad_row])
    before = _snapshot(store)
    written: list[int] = []

    def boom(con: duckdb.DuckDBPyConnection, bars: object, **_: object) -> int:
        # bars and quarantine rows are already written inside the open transaction
        written.append(con.execute("SELECT count(*) FROM bars_intraday").fetchone()[0])
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(feeds.ingest, "record_session_gaps", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest_file(store, p)
    assert written == [3]
    assert _snapshot(store) == before
    # the file was not logged, so once the fault is gone it lands normally
    monkeypatch.undo()
    rep = ingest_file(store, p)
    assert (rep.status, rep.rows_loaded, rep.rows_quarantined) == ("ingested", 3, 1)


def test_exception_after_daily_write_rolls_back(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = feeds.ingest.write_bars

    def write_then_fail(*args: object, **kwargs: object) -> object:
        real_write(*args, **kwargs)
        raise OSError("lost the disk")

    monkeypatch.setattr(feeds.ingest, "write_bars", write_then_fail)
    with pytest.raises(OSError, match="lost the disk"):
        ingest_file(store, write_csv("wind.csv", [WIND_HEADER, *DAILY]))
    assert counts(store) == dict.fromkeys(TABLES, 0)


_DIE_SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    import feeds.ingest
    from feeds.store import open_store

    def die(con, bars, **_):
        # bars are written inside the open transaction; make sure, then vanish
        n = con.execute("SELECT count(*) FROM bars_intraday").fetchone()[0]
        print(f"written {n}", flush=True)
        os._exit(1)

    feeds.ingest.record_session_gaps = die
    con = open_store(sys.argv[1])
    feeds.ingest.ingest_file(con, sys.argv[2])
    print("unreachable", flush=True)
    """
)


def test_process_dying_mid_ingest_leaves_no_partial_rows(
    tmp_path: Path, write_csv: WriteCsv
) -> None:
    db = tmp_path / "store.duckdb"
    con = open_store(db)
    ingest_file(con, write_csv("wind.csv", [WIND_HEADER, *DAILY]))
    before = _snapshot(con)
    con.close()

    morning = [datetime(2023, 8, 1, 9, 31) + timedelta(minutes=k) for k in range(120)]  # ..11:30
    minutes = [f"{t:%Y-%m-%d %H:%M:%S},3900.0,3901.0,3899.0,3900.5,100" for t in morning]
    p = write_csv("idx1m.csv", [SINA_INDEX_HEADER, *minutes])
    script = tmp_path / "die.py"
    script.write_text(_DIE_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(db), str(p)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip() == "written 120"

    con = open_store(db)
    try:
        assert _snapshot(con) == before
        assert counts(con)["bars_intraday"] == 0
        rep = ingest_file(con, p)  # and the store still works
        assert (rep.status, rep.rows_inserted) == ("ingested", 120)
    finally:
        con.close()


def test_same_bytes_with_another_symbol_lands(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv("etf.csv", ["date,open,high,low,close,volume", "2024-01-02,3.4,3.5,3.3,3.45,100"])
    ingest_file(store, p, symbol="510300.SH")
    rep = ingest_file(store, p, symbol="510500.SH")
    assert rep.status == "ingested"
