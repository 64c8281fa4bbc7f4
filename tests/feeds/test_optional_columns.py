"""Ingest never drops a column silently; daily gaps are named; reads ignore the connection's TZ."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from feeds.ingest import ingest_file
from feeds.parse import read_file
from feeds.read import daily_bars
from feeds.store import open_store

HEADER = "date,open,high,low,close,volume"
ROWS = [
    ("2024-01-02", 3400.0, 3410.0, 3390.0, 3405.0, 1000.0, 3.1e10),
    ("2024-01-03", 3405.0, 3420.0, 3400.0, 3415.0, 1100.0, 3.25e10),
    ("2024-01-05", 3415.0, 3418.0, 3380.0, 3385.0, 900.0, 2.9e10),  # 2024-01-04 missing
]


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_plain_csv_keeps_amount_and_names_unmapped_columns(tmp_path: Path) -> None:
    rows = [f"{d},{o},{h},{lo},{c},{v},{a},{v / 10}" for d, o, h, lo, c, v, a in ROWS]
    f = _csv(tmp_path / "p.csv", HEADER + ",amount,turnover_rate", rows)
    con = open_store(":memory:")
    rep = ingest_file(con, f, symbol="000300.SH")
    assert rep.profile == "plain_daily"
    assert rep.unmapped_columns == ("turnover_rate",)
    stored = con.execute("SELECT amount FROM bars_daily ORDER BY session").fetchall()
    assert [r[0] for r in stored] == [r[6] for r in ROWS]  # exactly the file's amounts
    assert rep.as_dict()["unmapped_columns"] == ["turnover_rate"]


def test_plain_csv_without_amount_stores_null_amount(tmp_path: Path) -> None:
    rows = [",".join(map(str, r[:6])) for r in ROWS]
    con = open_store(":memory:")
    rep = ingest_file(con, _csv(tmp_path / "p.csv", HEADER, rows), symbol="000300.SH")
    assert rep.rows_loaded == 3 and rep.unmapped_columns == ()
    assert con.execute("SELECT count(amount) FROM bars_daily").fetchall() == [(0,)]


def test_optional_kind_and_source_columns_are_read_per_row(tmp_path: Path) -> None:
    rows = [f"{','.join(map(str, r[:6]))},index_future,mybroker" for r in ROWS[:2]]
    rows.append(f"{','.join(map(str, ROWS[2][:6]))},spaceship,mybroker")
    f = _csv(tmp_path / "k.csv", HEADER + ",kind,source", rows)
    parsed = read_file(f, symbol="IF.CFE")
    assert parsed.rows["kind"].to_list()[:2] == ["index_future", "index_future"]
    assert parsed.rows["source"].unique().to_list() == ["mybroker"]
    bad = parsed.rows.filter(pl.col("_reason").is_not_null())
    assert bad["_field"].to_list() == ["kind"]
    assert "unknown kind 'spaceship'" in bad["_reason"][0]


def test_parquet_reports_columns_no_field_reads(tmp_path: Path) -> None:
    df = pl.DataFrame(
        {
            "symbol": ["000300.SH"] * 2,
            "date": [date(2024, 1, 2), date(2024, 1, 3)],
            "open": [1.0, 1.0],
            "high": [1.0, 1.0],
            "low": [1.0, 1.0],
            "close": [1.0, 1.0],
            "volume": [1.0, 1.0],
            "amount": [5.0, 6.0],
            "pe_ratio": [10.0, 11.0],
        }
    )
    df.write_parquet(tmp_path / "b.parquet")
    con = open_store(":memory:")
    rep = ingest_file(con, tmp_path / "b.parquet")
    assert rep.unmapped_columns == ("pe_ratio",)
    assert con.execute("SELECT amount FROM bars_daily ORDER BY session").fetchall() == [
        (5.0,),
        (6.0,),
    ]


def test_missing_daily_session_is_named_and_recorded(tmp_path: Path) -> None:
    rows = [",".join(map(str, r[:6])) for r in ROWS]
    con = open_store(":memory:")
    rep = ingest_file(con, _csv(tmp_path / "p.csv", HEADER, rows), symbol="000300.SH")
    assert rep.missing_sessions == (date(2024, 1, 4),)
    got = con.execute(
        "SELECT session, expected, present, missing FROM session_gaps WHERE frequency = '1d'"
    ).fetchall()
    assert got == [(date(2024, 1, 4), 1, 0, 1)]
    # the corrected file fills the gap and the record goes away
    fill = ",".join(map(str, ("2024-01-04", 3415.0, 3420.0, 3410.0, 3415.0, 1000.0)))
    rep2 = ingest_file(con, _csv(tmp_path / "q.csv", HEADER, [fill]), symbol="000300.SH")
    assert rep2.missing_sessions == ()
    assert con.execute("SELECT count(*) FROM session_gaps").fetchall() == [(0,)]


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Etc/UTC", "America/New_York"])
def test_reads_work_whatever_the_connection_time_zone(tmp_path: Path, tz: str) -> None:
    rows = [",".join(map(str, r[:6])) for r in ROWS]
    store = tmp_path / "s.duckdb"
    con = open_store(store)
    ingest_file(con, _csv(tmp_path / "p.csv", HEADER, rows), symbol="000300.SH")
    con.close()
    plain = duckdb.connect(str(store), read_only=True)  # not via open_store: no SET TimeZone
    plain.execute(f"SET TimeZone = '{tz}'")
    bars = daily_bars(plain, "000300.SH", as_of=datetime(2024, 1, 3, 7, 0, tzinfo=UTC))
    assert bars["ts"].dtype == pl.Datetime("us", "UTC")
    assert bars.filter(pl.col("ts") <= datetime(2024, 1, 2, 7, 0, tzinfo=UTC)).height == 1
    assert bars["session"].to_list() == [date(2024, 1, 2), date(2024, 1, 3)]
