"""Every source profile on the real vendor files (read in place from ../shared/data/real).

The directory is ingested once per test session (``real_ingest``); row counts and quirks are
those documented in PROVENANCE.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from feeds.calendar import EXCHANGE_TZ
from feeds.ingest import IngestReport
from feeds.read import daily_bars, intraday_bars
from feeds.reconcile import reconcile
from feeds.resample import resample_agreement, resample_intraday
from feeds.stats import store_stats
from tests.feeds.helpers import REAL, real_data

pytestmark = [real_data, pytest.mark.real_data]

Reports = dict[str, IngestReport]

# file -> (profile, rows read, loaded, quarantined, dropped) per PROVENANCE.md
EXPECTED = {
    "csi300_daily_wind_rlcsi300.csv": ("wind_daily", 4884, 4884, 0, 0),
    "csi300_daily_eastmoney_quantbt.csv": ("eastmoney_daily", 4558, 4558, 0, 0),
    # 43,989 bars + 42 repeated header lines; 2,043 duplicate timestamps (overlapping contracts)
    "if_futures_1min_sina_expiryweeks.csv": ("sina_futures_1m", 44031, 41946, 2043, 42),
    "if_main_5min_wondertrader_2014-2019.csv": ("terminal_5m", 68145, 68145, 0, 0),
    "csi300_1min_sina_202308.csv": ("sina_index_1m", 2151, 2151, 0, 0),
    "stock_600519_daily_qfq_tushare.csv": ("tushare_daily", 1319, 1319, 0, 0),
    "stock_601318_daily_qfq_tushare.csv": ("tushare_daily", 1319, 1319, 0, 0),
    "stock_600036_daily_qfq_tushare.csv": ("tushare_daily", 1319, 1319, 0, 0),
    "stock_000858_daily_qfq_tushare.csv": ("tushare_daily", 1319, 1319, 0, 0),
}


@pytest.fixture(scope="module")
def reports(real_ingest: tuple[Path, Reports]) -> Reports:
    return real_ingest[1]


def test_all_nine_files_ingest(reports: Reports) -> None:
    assert sorted(reports) == sorted(EXPECTED)
    assert {r.status for r in reports.values()} == {"ingested"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_row_counts_match_provenance(reports: Reports, name: str) -> None:
    r = reports[name]
    profile, read, loaded, quarantined, dropped = EXPECTED[name]
    assert (r.profile, r.rows_read, r.rows_loaded, r.rows_quarantined, r.rows_dropped) == (
        profile,
        read,
        loaded,
        quarantined,
        dropped,
    )
    assert r.rows_inserted == loaded
    assert r.rows_read - r.rows_dropped == r.rows_loaded + r.rows_quarantined


def test_store_holds_the_documented_rows(real_store: duckdb.DuckDBPyConnection) -> None:
    rows = {(s["symbol"], s["frequency"], s["source"]): s for s in store_stats(real_store)}
    assert {k: v["rows"] for k, v in rows.items()} == {
        ("000300.SH", "1d", "wind"): 4884,
        ("000300.SH", "1d", "eastmoney"): 4558,
        ("000300.SH", "1m", "sina"): 2151,
        ("IF.CFE", "1m", "sina"): 41946,
        ("IF.CFE", "5m", "wondertrader"): 68145,
        ("600519.SH", "1d", "tushare"): 1319,
        ("601318.SH", "1d", "tushare"): 1319,
        ("600036.SH", "1d", "tushare"): 1319,
        ("000858.SZ", "1d", "tushare"): 1319,
    }
    assert rows[("IF.CFE", "1m", "sina")]["quarantined"] == 2043
    assert rows[("000300.SH", "1d", "wind")]["first"] == "2005-04-08"
    assert rows[("000300.SH", "1d", "wind")]["last"] == "2025-05-16"
    assert rows[("000300.SH", "1d", "eastmoney")]["first"] == "2005-01-04"  # backfill kept
    assert rows[("IF.CFE", "5m", "wondertrader")]["first"] == "2014-01-02T01:35:00Z"
    assert rows[("IF.CFE", "5m", "wondertrader")]["last"] == "2019-10-31T07:00:00Z"


def test_sina_futures_duplicates_are_quarantined_not_dropped(
    real_store: duckdb.DuckDBPyConnection,
) -> None:
    got = real_store.execute(
        "SELECT count(*), count(*) FILTER (WHERE reason LIKE 'duplicate key: same bar as line %'),"
        " min(ts_local), max(ts_local) FROM ("
        "  SELECT reason, strptime(split_part(raw, ',', 2), '%Y-%m-%d %H:%M:%S') AS ts_local"
        "  FROM quarantine WHERE path LIKE '%if_futures_1min_sina_expiryweeks.csv')"
    ).fetchone()
    # the overlap of the three unlabelled contracts, 2023-08-08 .. 2023-08-14 11:22
    assert got[:2] == (2043, 2043)
    assert got[2].date() >= date(2023, 8, 8)
    assert got[3] <= datetime(2023, 8, 14, 11, 22)


def test_five_minute_futures_sessions(real_store: duckdb.DuckDBPyConnection) -> None:
    per_session = dict(
        real_store.execute(
            "SELECT session, count(*) FROM bars_intraday "
            "WHERE source = 'wondertrader' GROUP BY session"
        ).fetchall()
    )
    assert len(per_session) == 1421
    assert sum(1 for n in per_session.values() if n == 48) == 1419
    assert per_session[date(2016, 1, 4)] == 29  # circuit breaker
    assert per_session[date(2016, 1, 7)] == 4
    # the sessions are exactly the Wind index sessions over the span
    wind = {
        r[0]
        for r in real_store.execute(
            "SELECT session FROM bars_daily WHERE source = 'wind' "
            "AND session BETWEEN '2014-01-02' AND '2019-10-31'"
        ).fetchall()
    }
    assert set(per_session) == wind


def test_circuit_breaker_days_are_reported_as_session_gaps(
    real_store: duckdb.DuckDBPyConnection,
) -> None:
    gaps = {
        r[0]: r[1:]
        for r in real_store.execute(
            "SELECT session, expected, present, missing, first_missing FROM session_gaps "
            "WHERE source = 'wondertrader' AND session IN ('2016-01-04', '2016-01-07')"
        ).fetchall()
    }
    assert gaps == {
        # 2016-01-04: the 5% halt from 13:13 to 13:28 leaves no 13:20 or 13:25 bar; the 7% halt
        # after 13:34 ends the day at the 13:35 bar
        date(2016, 1, 4): (48, 29, 19, datetime(2016, 1, 4, 13, 20, tzinfo=EXCHANGE_TZ)),
        # 2016-01-07: bars 09:35, 09:40, 09:45, 10:00; 09:50 is the first missing stamp
        date(2016, 1, 7): (48, 4, 44, datetime(2016, 1, 7, 9, 50, tzinfo=EXCHANGE_TZ)),
    }
    complete_2016_on = real_store.execute(
        "SELECT count(*) FROM session_gaps WHERE source = 'wondertrader' "
        "AND session >= '2016-01-01' AND missing = 0"
    ).fetchone()[0]
    assert complete_2016_on == 932 - 2  # every post-2016 session but the two halted days


def test_cash_index_minutes(real_store: duckdb.DuckDBPyConnection) -> None:
    m = intraday_bars(real_store, "000300.SH", "1m")
    per_session = m.group_by("session").len()
    assert per_session.height == 9
    assert per_session["len"].to_list() == [239] * 9  # no 14:59 bar: closing call auction
    local = m["ts"].dt.convert_time_zone(str(EXCHANGE_TZ)).dt.time()
    assert time(14, 59) not in local.to_list()
    assert m["ts"][0] == datetime(2023, 8, 1, 1, 31, tzinfo=UTC)  # 09:31 Shanghai, bar end


def test_timestamps_are_utc_and_bar_end_labelled(real_store: duckdb.DuckDBPyConnection) -> None:
    five = intraday_bars(real_store, "IF.CFE", "5m")
    assert five.schema["ts"] == pl.Datetime("us", "UTC")
    first = five["ts"][0]
    assert first == datetime(2014, 1, 2, 1, 35, tzinfo=UTC)
    assert first.astimezone(EXCHANGE_TZ) == datetime(2014, 1, 2, 9, 35, tzinfo=EXCHANGE_TZ)
    assert five["session"][0] == date(2014, 1, 2)
    sina = intraday_bars(real_store, "IF.CFE", "1m")
    assert sina["ts"][0] == datetime(2020, 4, 13, 5, 51, tzinfo=UTC)  # 13:51, partial first day
    wind = daily_bars(real_store, "000300.SH", source="wind")
    assert wind.schema["ts"] == pl.Datetime("us", "UTC")
    assert wind["ts"][0] == datetime(2005, 4, 8, 7, 0, tzinfo=UTC)  # session close 15:00
    assert (wind["ts"].dt.time() == time(7, 0)).all()


def test_eastmoney_volume_in_lots_matches_wind_shares(
    real_store: duckdb.DuckDBPyConnection,
) -> None:
    wind = daily_bars(real_store, "000300.SH", source="wind")
    east = daily_bars(real_store, "000300.SH", source="eastmoney")
    j = east.join(wind, on="session", suffix="_wind")
    assert j.height == 4497
    rel = ((j["volume"] - j["volume_wind"]).abs() / j["volume_wind"]).max()
    assert rel < 1e-4  # eastmoney lots x100 == wind shares (PROVENANCE: ratio 99.999..100.005)
    amount = ((j["amount"] - j["amount_wind"]).abs() / j["amount_wind"]).max()
    assert amount < 1e-4  # both in CNY


def test_tushare_units_converted_to_shares_and_cny(real_store: duckdb.DuckDBPyConnection) -> None:
    raw = pl.read_csv(REAL / "stock_600519_daily_qfq_tushare.csv")
    stored = daily_bars(real_store, "600519.SH", source="tushare")
    assert stored.height == raw.height == 1319
    assert stored["session"][0] == date(2016, 1, 4)
    assert stored["close"][0] == 194.5039  # forward-adjusted (qfq), as the file has it
    assert stored["amount"].to_list() == pytest.approx((raw["amount"] * 1000).to_list(), rel=1e-12)
    assert stored["volume"].to_list() == pytest.approx((raw["vol"] * 100).to_list(), rel=1e-12)
    assert stored["amount"][0] == pytest.approx(371_909_829.0)  # 371,909.829 thousand CNY


def test_tushare_files_share_the_wind_calendar(real_store: duckdb.DuckDBPyConnection) -> None:
    got = real_store.execute(
        "SELECT symbol, count(*) FROM bars_daily t WHERE source = 'tushare' AND session IN ("
        "  SELECT session FROM bars_daily WHERE source = 'wind') GROUP BY symbol ORDER BY symbol"
    ).fetchall()
    assert got == [
        ("000858.SZ", 1319),
        ("600036.SH", 1319),
        ("600519.SH", 1319),
        ("601318.SH", 1319),
    ]


def test_reconcile_wind_and_eastmoney(real_store: duckdb.DuckDBPyConnection) -> None:
    [r] = reconcile(real_store, "000300.SH")
    assert r["sources"] == ["eastmoney", "wind"]
    assert r["common_sessions"] == 4497
    assert (r["first"], r["last"]) == ("2005-04-08", "2023-10-10")
    assert r["only_in"] == {"eastmoney": 4558 - 4497, "wind": 4884 - 4497}
    assert r["max_rel_diff"]["close"] < 1e-5
    assert r["worst_session"]["close"] == "2005-07-18"
    assert r["max_rel_diff"]["open"] == pytest.approx(3.9e-4, rel=0.01)
    assert r["worst_session"]["open"] == "2007-11-20"


def test_index_minutes_resample_to_the_wind_daily_bars(
    real_store: duckdb.DuckDBPyConnection,
) -> None:
    minute = intraday_bars(real_store, "000300.SH", "1m")
    wind = daily_bars(
        real_store, "000300.SH", source="wind", start=date(2023, 8, 1), end=date(2023, 8, 11)
    )
    agree = resample_agreement(minute, wind)
    assert agree.height == 9
    assert agree["rel_diff_close"].max() <= 2e-7  # PROVENANCE: 1.0e-7
    # summed 1m volume is 0.99984-0.99992 of the Wind daily volume
    assert 5e-5 < agree["rel_diff_volume"].min() <= agree["rel_diff_volume"].max() < 2e-4


def test_futures_minutes_resample_onto_the_five_minute_grid(
    real_store: duckdb.DuckDBPyConnection,
) -> None:
    minute = intraday_bars(real_store, "IF.CFE", "1m", source="sina")
    five = resample_intraday(minute, 5)
    local = five["ts"].dt.convert_time_zone(str(EXCHANGE_TZ))
    assert (local.dt.minute() % 5 == 0).all()
    assert (local.dt.second() == 0).all()
    hm = local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute()
    in_session = hm.is_between(9 * 60 + 35, 11 * 60 + 30) | hm.is_between(13 * 60 + 5, 15 * 60)
    assert in_session.all()
    assert (local.dt.date() == five["session"]).all()
    per_session = five.group_by("session").len()["len"]
    assert per_session.max() == 48
    assert five["volume"].sum() == minute["volume"].sum()
    assert five.height < minute.height / 4
