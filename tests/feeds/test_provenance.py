"""No symbol of a store ever holds both synthetic and real sources."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from feeds.ingest import expand_paths, ingest_file, ingest_synthetic
from feeds.parse import IngestError
from feeds.provenance import mixed_symbols
from feeds.stats import store_stats
from feeds.store import open_store
from feeds.synthetic import SYNTHETIC_SYMBOL
from tests.feeds.helpers import REAL, real_data

SYN = {"start": date(2024, 1, 2), "end": date(2024, 1, 10), "seed": 1, "minute_sessions": 0}
EASTMONEY = (
    "日期,开盘,收盘,最高,最低,成交量,成交额\n"
    "2024-01-02,3431.11,3386.35,3433.11,3384.51,115237925,1.6e11\n"
)


def _real_file(tmp_path: Path) -> Path:
    p = tmp_path / "em.csv"
    p.write_text(EASTMONEY, encoding="utf-8")
    return p


def test_the_synthetic_market_has_its_own_symbol(tmp_path: Path) -> None:
    con = open_store(":memory:")
    assert ingest_synthetic(con, **SYN).status == "ingested"
    ingest_file(con, _real_file(tmp_path))
    syms = {r["symbol"]: r["source"] for r in store_stats(con)}
    assert syms == {SYNTHETIC_SYMBOL: "synthetic", "000300.SH": "eastmoney"}
    assert mixed_symbols(con) == {}


def test_synthetic_bars_are_refused_under_a_real_symbol(tmp_path: Path) -> None:
    con = open_store(":memory:")
    ingest_file(con, _real_file(tmp_path))
    with pytest.raises(IngestError, match=r"000300\.SH would hold both synthetic bars and real"):
        ingest_synthetic(con, symbol="000300.SH", **SYN)
    assert mixed_symbols(con) == {}
    assert con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0] == 1  # nothing half


def test_real_bars_are_refused_under_a_synthetic_symbol(tmp_path: Path) -> None:
    con = open_store(":memory:")
    ingest_synthetic(con, symbol="000300.SH", **SYN)
    with pytest.raises(IngestError, match=r"em\.csv: symbol 000300\.SH would hold both"):
        ingest_file(con, _real_file(tmp_path))
    assert mixed_symbols(con) == {}


@real_data
@pytest.mark.real_data
def test_demo_ingest_of_synthetic_and_every_real_file_mixes_nothing() -> None:
    con = open_store(":memory:")
    ingest_synthetic(con, **SYN)
    for f in expand_paths([REAL]):
        ingest_file(con, f)
    assert mixed_symbols(con) == {}
    symbols = {r["symbol"] for r in store_stats(con)}
    assert SYNTHETIC_SYMBOL in symbols and "000300.SH" in symbols
