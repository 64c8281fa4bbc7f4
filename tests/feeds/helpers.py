"""Constants and helpers shared by the market-store tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

# ../shared/data/real beside the repository root; read in place, never copied.
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
SH = ZoneInfo("Asia/Shanghai")

real_data = pytest.mark.skipif(
    not REAL.exists(), reason=f"real data dir ../shared/data/real absent ({REAL})"
)

TABLES = (
    "bars_daily",
    "bars_intraday",
    "ingest_log",
    "quarantine",
    "bar_revisions",
    "session_gaps",
)

# Vendor headers of the layouts the bad-input tests imitate.
WIND_HEADER = ",OPEN,HIGH,LOW,CLOSE,VWAP,VOLUME,AMT"
SINA_INDEX_HEADER = "day,open,high,low,close,volume"
SINA_FUTURES_HEADER = ",datetime,open,high,low,close,volume,hold"
TERMINAL_HEADER = "<Date>, <Time>, <Open>, <High>, <Low>, <Close>, <Volume>"
EASTMONEY_HEADER = "日期,开盘,收盘,最高,最低,成交量,成交额,振幅,涨跌幅,涨跌额,换手率"


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every store table (to prove nothing was half-written)."""
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
