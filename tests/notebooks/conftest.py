"""Fixtures of the notebook tests: one small store the three notebooks read (and 03 writes to)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from feeds.ingest import ingest_file, ingest_synthetic
from feeds.snapshot import publish_snapshot
from feeds.store import open_store

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
# ../shared/data/real beside the repository root; read in place, never copied.
REAL = ROOT.parent / "shared" / "data" / "real"
REAL_FILES = (
    "csi300_daily_wind_rlcsi300.csv",
    "csi300_daily_eastmoney_quantbt.csv",
    "csi300_1min_sina_202308.csv",
    "if_main_5min_wondertrader_2014-2019.csv",
    "if_futures_1min_sina_expiryweeks.csv",  # its overlapping contracts fill the quarantine
)


def build_store(path: Path, *, real: bool) -> Path:
    """The synthetic market (about 18 months, 1-minute bars for the last 220 sessions), plus the
    real CSI 300 daily, index 1-minute and IF futures files when ``real``; snapshot published."""
    con = open_store(path)
    try:
        ingest_synthetic(
            con, start=date(2023, 1, 3), end=date(2024, 6, 28), seed=7, minute_sessions=220
        )
        if real:
            for name in REAL_FILES:
                ingest_file(con, REAL / name)
        publish_snapshot(con, path)
    finally:
        con.close()
    return path


@pytest.fixture(scope="session")
def notebook_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Store for the notebooks: real files too when ../shared/data/real exists."""
    return build_store(tmp_path_factory.mktemp("nb") / "quant.duckdb", real=REAL.exists())
