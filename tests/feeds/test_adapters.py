"""Feed adapters on recorded vendor frames: the production parsing, no network.

Fetched rows go through the same profile, transaction and idempotency as files; vendor faults
(empty frame, renamed column, stale bar, timeout) are clear feed errors with nothing written;
the IF main contract is resolved per session and recorded, and a roll is never read as a move.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.adapters import adapters, contracts, fetch_and_ingest, main_contract
from feeds.read import daily_bars, intraday_bars
from feeds.store import open_store
from feeds.vendor import FeedError, FeedNotReady, FetchPolicy
from models.features import intraday_feature_table
from tests.feeds.recorded import BASIS, ROLL_JUMP, RecordedVendor

D, PREV = date(2024, 3, 29), date(2024, 3, 28)
FAST = FetchPolicy(timeout_s=2.0, retries=0, backoff_s=0.0)


@pytest.fixture
def vendor() -> RecordedVendor:
    return RecordedVendor(date(2024, 1, 2), D, minute_sessions=5, roll=D)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_index_daily_lands_through_the_eastmoney_profile(
    vendor: RecordedVendor, tmp_path: Path
) -> None:
    con = open_store(":memory:")
    args = (con, "akshare-index-daily", "000300.SH", date(2024, 3, 25), D)
    r = fetch_and_ingest(*args, keep_dir=tmp_path, vendor=vendor, policy=FAST)
    assert (r.status, r.rows_loaded, r.profile) == ("ingested", 5, "eastmoney_daily")
    got = daily_bars(con, "000300.SH", source="eastmoney")
    want = vendor.daily.filter(pl.col("session") >= date(2024, 3, 25))
    assert got["session"].to_list() == want["session"].to_list()
    np.testing.assert_allclose(got["close"].to_numpy(), want["close"].to_numpy(), atol=0.006)
    kept = list(tmp_path.glob("akshare-index-daily_*.csv"))
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8").startswith("日期,开盘,收盘")
    again = fetch_and_ingest(*args, keep_dir=tmp_path, vendor=vendor, policy=FAST)
    assert again.status == "unchanged"


def test_a_bar_not_published_yet_is_not_ready(vendor: RecordedVendor, tmp_path: Path) -> None:
    vendor.available_through = PREV
    con = open_store(":memory:")
    with pytest.raises(FeedNotReady, match="newest bar is 2024-03-28, none for 2024-03-29"):
        fetch_and_ingest(con, "akshare-index-daily", "000300.SH", D, D, keep_dir=tmp_path,
                         vendor=vendor, policy=FAST)  # fmt: skip
    assert _count(con, "bars_daily") == 0


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        ({"stale": True}, "repeats the bar of 2024-03-28 exactly"),
        ({"rename": {"收盘": "收盘价"}}, r"lacks column\(s\) \['收盘'\]"),
        ({"delay_s": 0.5}, "timeout after 2 attempt"),
    ],
)
def test_vendor_faults_are_feed_errors_and_write_nothing(
    vendor: RecordedVendor, tmp_path: Path, fault: dict[str, object], match: str
) -> None:
    for k, v in fault.items():
        setattr(vendor, k, v)
    con = open_store(":memory:")
    policy = FetchPolicy(timeout_s=0.1, retries=1, backoff_s=0.0)
    with pytest.raises(FeedError, match=match):
        fetch_and_ingest(con, "akshare-index-daily", "000300.SH", D, D, keep_dir=tmp_path,
                         vendor=vendor, policy=policy)  # fmt: skip
    assert _count(con, "bars_daily") == 0 and _count(con, "ingest_log") == 0


def test_index_minutes_land_through_the_sina_profile(
    vendor: RecordedVendor, tmp_path: Path
) -> None:
    con = open_store(":memory:")
    r = fetch_and_ingest(con, "akshare-index-1m", "000300.SH", D, D, keep_dir=tmp_path,
                         vendor=vendor, policy=FAST)  # fmt: skip
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("ingested", 240, 0)
    got = intraday_bars(con, "000300.SH", "1m", source="sina")
    assert got["session"].unique().to_list() == [D]


def test_minutes_ending_before_the_close_are_not_ready(
    vendor: RecordedVendor, tmp_path: Path
) -> None:
    vendor.minute = vendor.minute.filter(
        pl.col("ts") < pl.datetime(2024, 3, 29, 6, 0, time_zone="UTC")
    )
    con = open_store(":memory:")
    with pytest.raises(FeedNotReady, match="before the close of 2024-03-29"):
        fetch_and_ingest(con, "akshare-index-1m", "000300.SH", D, D, keep_dir=tmp_path,
                         vendor=vendor, policy=FAST)  # fmt: skip


def test_main_contract_is_the_largest_open_interest_of_the_previous_session(
    vendor: RecordedVendor,
) -> None:
    assert main_contract(vendor, "IF", PREV, FAST) == (
        "IF2301",
        "largest open_interest on 2024-03-27",
    )
    assert main_contract(vendor, "IF", D, FAST) == ("IF2302", "largest open_interest on 2024-03-28")
    # IC has a larger open interest but is another product.
    assert main_contract(vendor, "IF", D, FAST, by="volume")[0] == "IF2302"


def test_if_main_minutes_record_their_contract_and_a_roll_is_no_move(
    vendor: RecordedVendor, tmp_path: Path
) -> None:
    con = open_store(":memory:")
    r = fetch_and_ingest(con, "akshare-if-main-1m", "IF.CFE", PREV, D, keep_dir=tmp_path,
                         vendor=vendor, policy=FAST)  # fmt: skip
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("ingested", 480, 0)
    assert [(s, c) for s, c, _ in contracts(con, "IF.CFE")] == [(PREV, "IF2301"), (D, "IF2302")]
    bars = intraday_bars(con, "IF.CFE", "1m", source="sina")
    first = bars.filter(pl.col("session") == D)["open"][0]
    last_prev = bars.filter(pl.col("session") == PREV)["close"][-1]
    index_first = vendor.minute.filter(pl.col("session") == D)["open"][0]
    assert first == pytest.approx(index_first + BASIS + ROLL_JUMP, abs=0.06)  # unadjusted
    assert first - last_prev > ROLL_JUMP / 2  # the roll is a jump in the raw prices ...
    feats = intraday_feature_table(bars, 1)
    roll_ret = feats.filter(pl.col("session") == D)["ret"][0]
    index_ret = np.log(
        vendor.minute.filter(pl.col("session") == D)["close"][0] / index_first
    )  # ... but the first bar's return is read from its own open, like the index's
    assert abs(roll_ret) < 0.002 and roll_ret == pytest.approx(index_ret, abs=5e-5)


def test_a_failed_session_writes_neither_bars_nor_contracts(
    vendor: RecordedVendor, tmp_path: Path
) -> None:
    vendor.available_through = PREV  # D's minutes are not out yet
    con = open_store(":memory:")
    with pytest.raises(FeedNotReady):
        fetch_and_ingest(con, "akshare-if-main-1m", "IF.CFE", PREV, D, keep_dir=tmp_path,
                         vendor=vendor, policy=FAST)  # fmt: skip
    assert _count(con, "bars_intraday") == 0 and contracts(con, "IF.CFE") == []


def test_unknown_adapter_is_named(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown adapter 'nope'"):
        fetch_and_ingest(open_store(":memory:"), "nope", "X", D, D, keep_dir=tmp_path)


def test_akshare_adapters_are_registered_without_importing_akshare() -> None:
    assert {"akshare-index-daily", "akshare-index-1m", "akshare-if-main-1m"} <= set(adapters())


@settings(max_examples=30, deadline=None)
@given(
    oi=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
    other=st.integers(0, 10**7),
    by=st.sampled_from(["open_interest", "volume"]),
)
def test_the_main_contract_is_the_largest_if_contract(oi: list[int], other: int, by: str) -> None:
    codes = [f"IF23{m:02d}" for m in range(1, len(oi) + 1)]
    rows = {
        "symbol": [*codes, "IC2301"],
        "variety": ["IF"] * len(oi) + ["IC"],
        "volume": [v // 3 for v in oi] + [other],
        "open_interest": [*oi, other],
    }
    vendor = SimpleNamespace(get_cffex_daily=lambda date: pd.DataFrame(rows))
    code, rule = main_contract(vendor, "IF", D, FAST, by=by)
    vals = rows[by][: len(oi)]
    assert code in codes and vals[codes.index(code)] == max(vals)
    assert rule == f"largest {by} on {PREV}"
