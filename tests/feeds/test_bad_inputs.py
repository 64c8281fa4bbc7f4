"""Every bad input: the error names the file and line/field, or the row is quarantined with its
reason; in both cases nothing is half-written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from feeds.ingest import IngestError, ingest_file
from feeds.parse import read_file
from tests.feeds.helpers import (
    EASTMONEY_HEADER,
    SINA_FUTURES_HEADER,
    SINA_INDEX_HEADER,
    TERMINAL_HEADER,
    WIND_HEADER,
    counts,
)

WriteCsv = Callable[..., Path]
EMPTY = dict.fromkeys(
    ("bars_daily", "bars_intraday", "ingest_log", "quarantine", "bar_revisions", "session_gaps"), 0
)

# Three valid Wind rows (2024-01-02..04 are sessions); tests splice one bad row in.
W1 = "2024-01-02,3400.0,3410.0,3390.0,3405.0,12.1,1000,12100"
W2 = "2024-01-03,3405.0,3420.0,3400.0,3415.0,12.2,1100,13420"
W3 = "2024-01-04,3415.0,3418.0,3380.0,3385.0,12.0,900,10800"


def _quarantine(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT path, line, field, reason, raw FROM quarantine ORDER BY line"
    ).fetchall()


def _assert_untouched(con: duckdb.DuckDBPyConnection) -> None:
    assert counts(con) == EMPTY


def _ingest_one_bad_row(
    store: duckdb.DuckDBPyConnection, path: Path, n_rows: int
) -> tuple[int, str, str, str]:
    """Ingest ``path`` whose rows all land but one; that row's (line, field, reason, raw)."""
    rep = ingest_file(store, path)
    assert rep.status == "ingested"
    assert rep.rows_quarantined == 1
    assert rep.rows_loaded == n_rows - 1
    c = counts(store)
    assert c["bars_daily"] + c["bars_intraday"] == n_rows - 1
    assert c["quarantine"] == 1
    assert c["ingest_log"] == 1
    log = store.execute(
        "SELECT rows_read, rows_loaded, rows_quarantined FROM ingest_log"
    ).fetchone()
    assert log == (n_rows, n_rows - 1, 1)
    [(qpath, line, field, reason, raw)] = _quarantine(store)
    assert qpath == str(path)
    return line, field, reason, raw


# ---------------------------------------------------------------- whole-file errors


@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_file_is_rejected(store: duckdb.DuckDBPyConnection, tmp_path: Path, content) -> None:
    p = tmp_path / "empty.csv"
    p.write_bytes(content)
    with pytest.raises(IngestError, match="file is empty") as exc:
        ingest_file(store, p)
    assert str(p) in str(exc.value)
    _assert_untouched(store)


def test_header_only_file_is_rejected(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv("header_only.csv", [WIND_HEADER])
    with pytest.raises(IngestError, match="no data rows after the header") as exc:
        ingest_file(store, p)
    assert str(p) in str(exc.value)
    _assert_untouched(store)


@pytest.mark.parametrize("delim", [";", "\t"])
def test_wrong_delimiter_is_rejected(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, delim: str
) -> None:
    p = write_csv("semi.csv", [WIND_HEADER.replace(",", delim), W1.replace(",", delim)])
    with pytest.raises(IngestError) as exc:
        ingest_file(store, p)
    assert str(exc.value) == (
        f"{p}: line 1: expected comma-delimited columns, found {delim!r} delimiters"
    )
    _assert_untouched(store)


def test_undecodable_bytes_are_rejected(store: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    p = tmp_path / "binary.csv"
    p.write_bytes(b"\xff\xfe\xff,\x00\xff\n\xff\xff\n")  # neither UTF-8 nor GB18030
    with pytest.raises(IngestError, match="not UTF-8 or GBK/GB18030") as exc:
        ingest_file(store, p)
    assert str(p) in str(exc.value)
    _assert_untouched(store)


def test_missing_required_column_detected_layout(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    header = WIND_HEADER.replace(",CLOSE", "")
    p = write_csv("no_close.csv", [header, "2024-01-02,3400.0,3410.0,3390.0,12.1,1000,12100"])
    with pytest.raises(IngestError) as exc:
        ingest_file(store, p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: line 1: ")
    assert "'wind_daily'" in msg
    assert "['CLOSE']" in msg
    _assert_untouched(store)


def test_missing_required_column_named_profile(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv("no_volume.csv", ["day,open,high,low,close", "2023-08-01 09:31:00,1,1,1,1"])
    with pytest.raises(IngestError) as exc:
        ingest_file(store, p, profile="sina_index_1m")
    assert str(exc.value) == (
        f"{p}: line 1: missing required column(s) ['volume'] for profile 'sina_index_1m'"
    )
    _assert_untouched(store)


def test_file_without_symbol_needs_one(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv("plain.csv", ["date,open,high,low,close,volume", "2024-01-02,1,2,1,2,10"])
    with pytest.raises(IngestError, match="pass a symbol") as exc:
        ingest_file(store, p)
    assert str(p) in str(exc.value)
    _assert_untouched(store)
    rep = ingest_file(store, p, symbol="510300.SH")
    assert rep.rows_loaded == 1
    assert store.execute("SELECT symbol FROM bars_daily").fetchone() == ("510300.SH",)


def test_plain_file_with_its_own_symbol_column(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv(
        "plain_sym.csv",
        [
            "date,symbol,open,high,low,close,volume",
            "2024-01-02,510300.SH,3.4,3.5,3.3,3.45,100",
            "2024-01-02,,3.4,3.5,3.3,3.45,100",
            "2024-01-02,510500.SH,5.4,5.5,5.3,5.45,200",
        ],
    )
    rep = ingest_file(store, p)
    assert (rep.profile, rep.rows_loaded, rep.rows_quarantined) == ("plain_daily", 2, 1)
    assert store.execute("SELECT symbol, close FROM bars_daily ORDER BY symbol").fetchall() == [
        ("510300.SH", 3.45),
        ("510500.SH", 5.45),
    ]
    assert _quarantine(store)[0][1:4] == (3, "symbol", "missing symbol")


# ---------------------------------------------------------------- encodings


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_gbk_encoded_eastmoney_headers_ingest(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, encoding: str
) -> None:
    p = write_csv(
        "eastmoney_gbk.csv",
        [
            EASTMONEY_HEADER,
            "2024-01-02,3400.00,3405.00,3410.00,3390.00,1000,1210000.0,0.59,0.1,3.4,0.2",
            "2024-01-03,3405.00,3415.00,3420.00,3400.00,1100,1342000.0,0.59,0.3,10.0,0.2",
        ],
        encoding=encoding,
    )
    with pytest.raises(UnicodeDecodeError):
        p.read_bytes().decode("utf-8")  # really not UTF-8
    assert read_file(p).encoding == "gb18030"
    rep = ingest_file(store, p)
    assert (rep.profile, rep.source, rep.rows_loaded, rep.rows_quarantined) == (
        "eastmoney_daily",
        "eastmoney",
        2,
        0,
    )
    # Close precedes high/low in this layout; volume is in lots of 100 shares.
    assert store.execute(
        "SELECT session, open, high, low, close, volume, amount FROM bars_daily ORDER BY session"
    ).fetchall() == [
        (date(2024, 1, 2), 3400.0, 3410.0, 3390.0, 3405.0, 100_000.0, 1_210_000.0),
        (date(2024, 1, 3), 3405.0, 3420.0, 3400.0, 3415.0, 110_000.0, 1_342_000.0),
    ]


def test_utf8_bom_is_accepted(store: duckdb.DuckDBPyConnection, write_csv: WriteCsv) -> None:
    p = write_csv("bom.csv", [WIND_HEADER, W1], encoding="utf-8-sig")
    assert ingest_file(store, p).rows_loaded == 1


# ---------------------------------------------------------------- row-level quarantine


def test_unparseable_number_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    bad = "2024-01-03,3405.0,3420.0,3400.0,abc,12.2,1100,13420"
    p = write_csv("num.csv", [WIND_HEADER, W1, bad, W3])
    assert _ingest_one_bad_row(store, p, 3) == (3, "close", "unparseable number 'abc'", bad)


def test_unparseable_date_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    bad = "2024-13-45,3405.0,3420.0,3400.0,3415.0,12.2,1100,13420"
    p = write_csv("date.csv", [WIND_HEADER, W1, bad, W3])
    assert _ingest_one_bad_row(store, p, 3) == (3, "date", "unparseable date '2024-13-45'", bad)


def test_unparseable_intraday_datetime_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv(
        "dt.csv",
        [
            SINA_INDEX_HEADER,
            "2023-08-01 09:31:00,3900,3901,3899,3900.5,100",
            "2023-08-01 9h32,3900,3901,3899,3900.5,100",
        ],
    )
    line, field, reason, _ = _ingest_one_bad_row(store, p, 2)
    assert (line, field, reason) == (3, "datetime", "unparseable datetime '2023-08-01 9h32'")


def test_unparseable_terminal_time_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv(
        "t5.csv",
        [
            TERMINAL_HEADER,
            "2019/10/31, 09:35:00, 3900.0, 3901.0, 3899.0, 3900.2, 100",
            "2019/10/31, 25:40:00, 3900.0, 3901.0, 3899.0, 3900.2, 100",
        ],
        eol="\r\n",
    )
    line, field, reason, _ = _ingest_one_bad_row(store, p, 2)
    assert (line, field, reason) == (3, "time", "unparseable time '25:40:00'")


def test_wrong_field_count_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    bad = "2024-01-03,3405.0,3420.0"
    p = write_csv("short.csv", [WIND_HEADER, W1, bad, W3])
    assert _ingest_one_bad_row(store, p, 3) == (3, "row", "expected 8 fields, found 3", bad)


def test_repeated_header_is_quarantined_for_ordinary_profiles(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv("rep.csv", [WIND_HEADER, W1, WIND_HEADER, W2, W3])
    line, field, reason, raw = _ingest_one_bad_row(store, p, 4)
    assert (line, field, reason, raw) == (3, "row", "repeated header row", WIND_HEADER)


def test_repeated_header_is_dropped_for_sina_futures(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv(
        "if1m.csv",
        [
            SINA_FUTURES_HEADER,
            "0,2023-07-21 14:59:00,3900.0,3901.0,3899.0,3900.2,10,5000",
            "1,2023-07-21 15:00:00,3900.2,3902.0,3900.0,3901.0,12,4990",
            SINA_FUTURES_HEADER,  # the next appended download
            "0,2023-07-24 09:31:00,3910.0,3911.0,3909.0,3910.2,20,6000",
        ],
    )
    rep = ingest_file(store, p)
    assert (rep.rows_read, rep.rows_dropped, rep.rows_loaded, rep.rows_quarantined) == (4, 1, 3, 0)
    assert counts(store)["quarantine"] == 0
    assert store.execute("SELECT rows_dropped FROM ingest_log").fetchone() == (1,)
    # hold is open interest in contracts
    assert store.execute(
        "SELECT ts, volume, open_interest FROM bars_intraday ORDER BY ts"
    ).fetchall() == [
        (datetime(2023, 7, 21, 6, 59, tzinfo=UTC), 10.0, 5000.0),
        (datetime(2023, 7, 21, 7, 0, tzinfo=UTC), 12.0, 4990.0),
        (datetime(2023, 7, 24, 1, 31, tzinfo=UTC), 20.0, 6000.0),
    ]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("2024-01-03,3405.0,3420.0,3400.0,nan,12.2,1100,13420", "close"),
        ("2024-01-03,3405.0,inf,3400.0,3415.0,12.2,1100,13420", "high"),
        ("2024-01-03,3405.0,3420.0,-inf,3415.0,12.2,1100,13420", "low"),
        ("2024-01-03,3405.0,3420.0,3400.0,3415.0,12.2,NaN,13420", "volume"),
        ("2024-01-03,3405.0,3420.0,3400.0,3415.0,12.2,1100,inf", "amount"),
    ],
)
def test_non_finite_values_are_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, bad: str, field: str
) -> None:
    p = write_csv("nan.csv", [WIND_HEADER, W1, bad, W3])
    assert _ingest_one_bad_row(store, p, 3) == (3, field, "non-finite value", bad)


def test_missing_value_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    bad = "2024-01-03,3405.0,3420.0,3400.0,,12.2,1100,13420"
    p = write_csv("blank.csv", [WIND_HEADER, W1, bad, W3])
    assert _ingest_one_bad_row(store, p, 3) == (3, "close", "missing value", bad)


def test_negative_volume_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    bad = "2024-01-03,3405.0,3420.0,3400.0,3415.0,12.2,-100,13420"
    p = write_csv("negvol.csv", [WIND_HEADER, W1, bad, W3])
    line, field, reason, _ = _ingest_one_bad_row(store, p, 3)
    assert (line, field) == (3, "volume")
    assert reason.startswith("negative volume -100")


def test_duplicate_key_keeps_first_and_quarantines_later(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    dup = "2024-01-02,3401.0,3411.0,3391.0,3406.0,12.1,1000,12100"
    p = write_csv("dup.csv", [WIND_HEADER, W1, W2, dup])
    line, field, reason, raw = _ingest_one_bad_row(store, p, 3)
    assert (line, field, reason, raw) == (4, "ts", "duplicate key: same bar as line 2", dup)
    assert store.execute(
        "SELECT close FROM bars_daily WHERE session = '2024-01-02'"
    ).fetchone() == (3405.0,)


def test_duplicate_intraday_timestamp_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv(
        "dup1m.csv",
        [
            SINA_INDEX_HEADER,
            "2023-08-01 09:31:00,3900,3901,3899,3900.5,100",
            "2023-08-01 09:32:00,3900,3901,3899,3900.5,100",
            "2023-08-01 09:31:00,3950,3951,3949,3950.5,100",
        ],
    )
    line, field, reason, _ = _ingest_one_bad_row(store, p, 3)
    assert (line, field, reason) == (4, "ts", "duplicate key: same bar as line 2")


@pytest.mark.parametrize(
    ("header", "stamp", "ok", "line_fmt"),
    [
        # cash index: lunch break, pre-open auction, after the close, misaligned second
        (SINA_INDEX_HEADER, "2023-08-01 12:00:00", False, "{s},3900,3901,3899,3900.5,100"),
        (SINA_INDEX_HEADER, "2023-08-01 09:25:00", False, "{s},3900,3901,3899,3900.5,100"),
        (SINA_INDEX_HEADER, "2023-08-01 09:30:00", False, "{s},3900,3901,3899,3900.5,100"),
        (SINA_INDEX_HEADER, "2023-08-01 15:01:00", False, "{s},3900,3901,3899,3900.5,100"),
        (SINA_INDEX_HEADER, "2023-08-01 10:00:30", False, "{s},3900,3901,3899,3900.5,100"),
        (SINA_INDEX_HEADER, "2023-08-01 13:00:00", False, "{s},3900,3901,3899,3900.5,100"),
        (SINA_INDEX_HEADER, "2023-08-01 13:01:00", True, "{s},3900,3901,3899,3900.5,100"),
        (SINA_INDEX_HEADER, "2023-08-01 11:30:00", True, "{s},3900,3901,3899,3900.5,100"),
        # index futures: 15:10 is out of session after 2016 and inside it before
        (SINA_FUTURES_HEADER, "2016-03-01 15:10:00", False, "0,{s},3000,3001,2999,3000,5,100"),
        (SINA_FUTURES_HEADER, "2015-03-02 15:10:00", True, "0,{s},3000,3001,2999,3000,5,100"),
        (SINA_FUTURES_HEADER, "2015-03-02 09:16:00", True, "0,{s},3000,3001,2999,3000,5,100"),
        (SINA_FUTURES_HEADER, "2015-03-02 15:16:00", False, "0,{s},3000,3001,2999,3000,5,100"),
        (SINA_FUTURES_HEADER, "2016-03-01 09:16:00", False, "0,{s},3000,3001,2999,3000,5,100"),
        (SINA_FUTURES_HEADER, "2016-03-01 12:00:00", False, "0,{s},3000,3001,2999,3000,5,100"),
    ],
)
def test_intraday_session_rules(
    store: duckdb.DuckDBPyConnection,
    write_csv: WriteCsv,
    header: str,
    stamp: str,
    ok: bool,
    line_fmt: str,
) -> None:
    good_stamp = stamp[:11] + "10:00:00"
    p = write_csv("session.csv", [header, line_fmt.format(s=good_stamp), line_fmt.format(s=stamp)])
    if ok:
        rep = ingest_file(store, p)
        assert (rep.rows_loaded, rep.rows_quarantined) == (2, 0)
        return
    line, field, reason, _ = _ingest_one_bad_row(store, p, 2)
    assert (line, field) == (3, "datetime")
    assert reason == f"bar end {stamp[11:]} outside the trading session"


@pytest.mark.parametrize(
    ("stamp", "ok"),
    [("2015/3/2, 15:10:00", True), ("2016/3/1, 15:10:00", False), ("2016/3/1, 09:32:00", False)],
)
def test_five_minute_session_rules(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, stamp: str, ok: bool
) -> None:
    day = stamp.split(",")[0]
    p = write_csv(
        "t5.csv",
        [
            TERMINAL_HEADER,
            f"{day}, 10:00:00, 3000.0, 3001.0, 2999.0, 3000.2, 100",
            f"{stamp}, 3000.0, 3001.0, 2999.0, 3000.2, 100",
        ],
        eol="\r\n",
    )
    if ok:
        assert ingest_file(store, p).rows_quarantined == 0
        return
    line, field, reason, _ = _ingest_one_bad_row(store, p, 2)
    assert (line, field) == (3, "datetime")
    assert "outside the trading session" in reason


@pytest.mark.parametrize(
    ("day", "why"),
    [("2024-01-06", "Saturday"), ("2024-10-01", "National Day"), ("2024-02-12", "Spring Festival")],
)
def test_daily_bar_on_non_trading_day_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, day: str, why: str
) -> None:
    bad = f"{day},3405.0,3420.0,3400.0,3415.0,12.2,1100,13420"
    p = write_csv("holiday.csv", [WIND_HEADER, W1, bad, W3])
    line, field, reason, _ = _ingest_one_bad_row(store, p, 3)
    assert (line, field, reason) == (3, "session", f"{day} is not an XSHG trading day"), why


def test_intraday_bar_on_holiday_is_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    p = write_csv(
        "hol1m.csv",
        [
            SINA_INDEX_HEADER,
            "2024-09-30 10:00:00,3900,3901,3899,3900.5,100",
            "2024-10-01 10:00:00,3900,3901,3899,3900.5,100",
        ],
    )
    line, field, reason, _ = _ingest_one_bad_row(store, p, 2)
    assert (line, field, reason) == (3, "session", "2024-10-01 is not an XSHG trading day")


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        # high below the close
        ("2024-01-03,3405.0,3410.0,3400.0,3415.0,12.2,1100,13420", "high", "high 3410.0 below"),
        # high below the low
        ("2024-01-03,3405.0,3400.0,3402.0,3400.0,12.2,1100,13420", "high", "high 3400.0 below"),
        # low above the open
        ("2024-01-03,3405.0,3420.0,3406.0,3415.0,12.2,1100,13420", "low", "low 3406.0 above"),
    ],
)
def test_ohlc_violations_are_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, bad: str, field: str, reason: str
) -> None:
    p = write_csv("ohlc.csv", [WIND_HEADER, W1, bad, W3])
    line, got_field, got_reason, _ = _ingest_one_bad_row(store, p, 3)
    assert (line, got_field) == (3, field)
    assert got_reason.startswith(reason)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("2024-01-03,0,3420.0,3400.0,3415.0,12.2,1100,13420", "open"),
        ("2024-01-03,3405.0,3420.0,-1.0,3415.0,12.2,1100,13420", "low"),
        ("2024-01-03,-5,-1,-9,-2,12.2,1100,13420", "open"),
    ],
)
def test_non_positive_prices_are_quarantined(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv, bad: str, field: str
) -> None:
    p = write_csv("price.csv", [WIND_HEADER, W1, bad, W3])
    line, got_field, reason, _ = _ingest_one_bad_row(store, p, 3)
    assert (line, got_field) == (3, field)
    assert reason.startswith("non-positive price")


def test_every_bad_row_of_one_file_is_accounted_for(
    store: duckdb.DuckDBPyConnection, write_csv: WriteCsv
) -> None:
    rows = [
        W1,
        "2024-01-03,3405.0,3420.0,3400.0,x,12.2,1100,13420",  # unparseable
        "2024-01-06,3405.0,3420.0,3400.0,3415.0,12.2,1100,13420",  # Saturday
        "2024-01-04,3415.0,3418.0,3380.0,3385.0,12.0,-9,10800",  # negative volume
        W3,
        "2024-01-05,3385.0,3390.0,3370.0,3380.0,12.0,800,9600",
    ]
    p = write_csv("mixed.csv", [WIND_HEADER, *rows])
    rep = ingest_file(store, p)
    assert (rep.rows_read, rep.rows_loaded, rep.rows_quarantined) == (6, 3, 3)
    assert [(r[1], r[2]) for r in _quarantine(store)] == [
        (3, "close"),
        (4, "session"),
        (5, "volume"),
    ]
    assert [
        r[0] for r in store.execute("SELECT session FROM bars_daily ORDER BY 1").fetchall()
    ] == [
        date(2024, 1, 2),
        date(2024, 1, 4),
        date(2024, 1, 5),
    ]
