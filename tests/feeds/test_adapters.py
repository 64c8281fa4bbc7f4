"""Feed adapters: fetched rows go through the same profile, transaction and idempotency as files."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from feeds.adapters import FeedAdapter, adapters, fetch_and_ingest, register_adapter
from feeds.read import daily_bars
from feeds.store import open_store

ROWS = [
    ["2024-01-02", "3431.11", "3386.35", "3433.11", "3384.51", "115237925", "1.6e11"],
    ["2024-01-03", "3382.03", "3378.47", "3392.53", "3368.51", "102417411", "1.4e11"],
]
HEADER = ["日期", "开盘", "收盘", "最高", "最低", "成交量", "成交额"]


def _fake_fetch(symbol: str, start: date, end: date) -> tuple[list[str], list[list[str]]]:
    return HEADER, [r for r in ROWS if start.isoformat() <= r[0] <= end.isoformat()]


@pytest.fixture(scope="module")
def eastmoney_like() -> str:
    name = "test-eastmoney-layout"
    if name not in adapters():
        register_adapter(
            FeedAdapter(name, "eastmoney_daily", "rows in Eastmoney layout", _fake_fetch)
        )
    return name


def test_fetched_rows_land_through_the_profile(eastmoney_like: str, tmp_path: Path) -> None:
    con = open_store(":memory:")
    r = fetch_and_ingest(
        con, eastmoney_like, "000300.SH", date(2024, 1, 1), date(2024, 1, 5), keep_dir=tmp_path
    )
    assert (r.status, r.rows_loaded, r.profile) == ("ingested", 2, "eastmoney_daily")
    bars = daily_bars(con, "000300.SH", source="eastmoney")
    assert bars["close"].to_list() == [3386.35, 3378.47]
    assert bars["volume"].to_list() == [11523792500.0, 10241741100.0]  # lots x 100 = shares
    kept = list(tmp_path.glob("*.csv"))
    assert len(kept) == 1
    assert next(csv.reader(io.StringIO(kept[0].read_text(encoding="utf-8")))) == HEADER


def test_refetching_the_same_rows_is_a_no_op(eastmoney_like: str, tmp_path: Path) -> None:
    con = open_store(":memory:")
    args = (con, eastmoney_like, "000300.SH", date(2024, 1, 1), date(2024, 1, 5))
    fetch_and_ingest(*args, keep_dir=tmp_path)
    assert fetch_and_ingest(*args, keep_dir=tmp_path).status == "unchanged"


def test_unknown_adapter_is_named() -> None:
    with pytest.raises(KeyError, match="unknown adapter 'nope'"):
        fetch_and_ingest(open_store(":memory:"), "nope", "X", date(2024, 1, 1), date(2024, 1, 2))


def test_akshare_adapters_are_registered_without_importing_akshare() -> None:
    assert {"akshare-index-daily", "akshare-futures-1m"} <= set(adapters())
