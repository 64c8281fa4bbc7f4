"""The daily job brings in the day's bars by itself: an inbox, adapters, late data, live checks.

Vendor frames are recorded (tests/feeds/recorded.py, layouts of the real files); the pipeline
runs for real with the tiny model of the pipeline tests.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from feeds.adapters import contracts, fetch_and_ingest
from feeds.read import daily_bars, intraday_bars
from feeds.store import open_store
from feeds.vendor import FetchPolicy
from quant.api.app import create_app
from quant.config import QuantConfig
from quant.feeds_run import run_feeds
from quant.pipeline import get_run, run_daily
from quant.scheduler import store_runner
from quant.signals import latest_signal
from tests.feeds.recorded import RecordedVendor
from tests.quant.conftest import tiny_config_dict

SH = ZoneInfo("Asia/Shanghai")
START, D, PREV = date(2022, 1, 4), date(2022, 12, 30), date(2022, 12, 29)
FEEDS = [
    {"kind": "adapter", "adapter": "akshare-index-daily", "symbol": "000300.SH", "frequency": "1d"},
    {"kind": "adapter", "adapter": "akshare-index-1m", "symbol": "000300.SH", "frequency": "1m"},
    {"kind": "adapter", "adapter": "akshare-if-main-1m", "symbol": "IF.CFE", "frequency": "1m"},
]
FAST = FetchPolicy(timeout_s=5.0, retries=0, backoff_s=0.0)


def _config(root: Path, **extra: Any) -> QuantConfig:
    d = tiny_config_dict(root, ingest_synthetic=False, ingest_real=False)
    d["data"] = {**d["data"], "symbol": "000300.SH", "intraday_symbol": "IF.CFE"}
    d["live"] = {"retry_interval_s": 0.01}
    return QuantConfig.model_validate({**d, **extra})


class Clock:
    """Exchange time that moves ``step`` on every reading."""

    def __init__(self, t: datetime, step: timedelta = timedelta(0)) -> None:
        self.t, self.step = t, step

    def __call__(self) -> datetime:
        t = self.t
        self.t += self.step
        return t


def _backfill(cfg: QuantConfig, vendor: RecordedVendor, end: date) -> None:
    """History up to ``end`` through the adapters (as ``quant fetch`` would)."""
    con = open_store(cfg.store.path)
    keep = Path(cfg.store.path).parent / "fetched"
    args = {"keep_dir": keep, "vendor": vendor, "policy": FAST}
    fetch_and_ingest(con, "akshare-index-daily", "000300.SH", START, end, **args)
    first_minutes = vendor.minute["session"].min()
    fetch_and_ingest(con, "akshare-if-main-1m", "IF.CFE", first_minutes, end, **args)
    con.close()


@pytest.fixture
def vendor() -> RecordedVendor:
    return RecordedVendor(START, D, minute_sessions=20, roll=date(2022, 12, 16))


def test_adapter_feeds_bring_in_the_sessions_daily_and_minute_bars(
    tmp_path: Path, vendor: RecordedVendor
) -> None:
    cfg = _config(tmp_path, feeds=FEEDS)
    _backfill(cfg, vendor, PREV)
    con = open_store(cfg.store.path)
    assert daily_bars(con, "000300.SH")["session"].max() == PREV
    r = run_daily(con, cfg, D, vendor=vendor, store_path=Path(cfg.store.path))
    assert r.status == "done", r.error
    ingest = r.steps["ingest"]["detail"]
    loaded = {k: (v["status"], v["rows_loaded"]) for k, v in ingest["feeds"].items()}
    assert loaded == {
        "akshare-index-daily:000300.SH:1d": ("ingested", 1),
        "akshare-index-1m:000300.SH:1m": ("ingested", 240),
        "akshare-if-main-1m:IF.CFE:1m": ("ingested", 240),
    }
    assert any("resample to the daily bar" in c for c in ingest["checks"]["passed"])
    assert intraday_bars(con, "IF.CFE", "1m", start=D)["session"].unique().to_list() == [D]
    assert contracts(con, "IF.CFE")[-1][:2] == (D, "IF2302")
    signal = r.steps["signal"]["detail"]
    assert signal["used_intraday"] is True  # the minute branch saw the session's bars
    assert signal["decision_session"] == D.isoformat()
    con.close()


def test_an_inbox_file_is_picked_up_archived_and_a_second_drop_changes_nothing(
    tmp_path: Path, vendor: RecordedVendor
) -> None:
    inbox = tmp_path / "drop"
    cfg = _config(tmp_path, feeds=[{"kind": "inbox", "directory": str(inbox), "settle_s": 0}])
    frame = vendor.index_zh_a_hist("000300", "daily", f"{START:%Y%m%d}", f"{D:%Y%m%d}")
    inbox.mkdir()
    drop = inbox / "csi300_20221230.csv"
    frame.to_csv(drop, index=False)
    payload = drop.read_bytes()
    runner = store_runner(cfg, "000300.SH", threading.Event())
    runner.now = Clock(datetime(2022, 12, 30, 16, 0, tzinfo=SH))  # after the 15:30 run time
    [r] = runner.catch_up()
    assert r.status == "done", r.error
    assert r.steps["ingest"]["detail"]["feeds"]["inbox"]["ingested"] == 1
    assert not drop.exists() and len(list((inbox / "archive" / "ingested").glob("*.csv"))) == 1
    con = open_store(cfg.store.path)
    sig = latest_signal(con, "000300.SH")
    assert sig is not None and sig.decision_session == D
    before = con.execute("SELECT count(*), max(ingested_at) FROM bars_daily").fetchall()
    drop.write_bytes(payload)  # the vendor sends the same file again
    feeds, errors = run_feeds(con, cfg, D)
    assert errors == [] and (feeds["inbox"]["unchanged"], feeds["inbox"]["ingested"]) == (1, 0)
    assert con.execute("SELECT count(*), max(ingested_at) FROM bars_daily").fetchall() == before
    con.close()


def test_late_data_waits_then_is_late_then_completes_when_the_bar_arrives(
    tmp_path: Path, vendor: RecordedVendor
) -> None:
    cfg = _config(tmp_path, feeds=FEEDS[:1])
    _backfill(cfg, vendor, PREV)
    vendor.available_through = PREV  # D's bar is not out at the run time
    runner = store_runner(cfg, "000300.SH", threading.Event(), vendor=vendor)
    runner.now = Clock(datetime(2022, 12, 30, 15, 30, tzinfo=SH), timedelta(minutes=50))
    [r] = runner.catch_up()
    assert r.status == "late" and "none for 2022-12-30 yet" in (r.error or "")
    assert vendor.calls.count("index_zh_a_hist") >= 2  # it waited and tried again
    con = open_store(cfg.store.path)
    run = get_run(con, "000300.SH", D)
    assert run is not None and run["status"] == "late"
    assert latest_signal(con, "000300.SH") is None  # nothing published for a late day
    con.close()
    with TestClient(create_app(cfg)) as api:
        ready = api.get("/readyz").json()
        assert ready["stale"] is True
        assert any("store is stale: 000300.SH 2022-12-30 late" in w for w in ready["warnings"])
        assert "quant_store_stale 1.0" in api.get("/metrics").text
    vendor.available_through = D  # the vendor publishes late; the next firing completes the day
    runner.now = Clock(datetime(2023, 1, 3, 15, 30, tzinfo=SH), timedelta(hours=2))
    out = runner.catch_up()
    assert out[0].run_date == D and out[0].status == "done", out[0].error
    con = open_store(cfg.store.path)
    sig = latest_signal(con, "000300.SH")
    assert sig is not None and (sig.decision_session, sig.session) == (D, date(2023, 1, 3))
    con.close()
    assert out[1].run_date == date(2023, 1, 3) and out[1].status == "late"  # no data yet either
    with TestClient(create_app(cfg)) as api:
        warnings = api.get("/readyz").json()["warnings"]
        assert not any("000300.SH 2022-12-30 late" in w for w in warnings)  # completed: not stale
        assert any("000300.SH 2023-01-03 late" in w for w in warnings)


def test_a_feed_error_is_recorded_and_the_day_retried(
    tmp_path: Path, vendor: RecordedVendor
) -> None:
    cfg = _config(tmp_path, feeds=FEEDS[:1])
    _backfill(cfg, vendor, PREV)
    vendor.rename = {"收盘": "收盘价"}  # the vendor renamed a column overnight
    con = open_store(cfg.store.path)
    r = run_daily(con, cfg, D, vendor=vendor)
    assert r.status == "waiting_for_data"
    assert "lacks column(s) ['收盘']" in (r.error or "")
    assert daily_bars(con, "000300.SH")["session"].max() == PREV  # nothing half-written
    vendor.rename = {}
    assert run_daily(con, cfg, D, vendor=vendor).status == "done"
    con.close()


def test_a_move_beyond_the_bound_is_held_for_review(tmp_path: Path, vendor: RecordedVendor) -> None:
    cfg = _config(tmp_path, feeds=FEEDS[:1])
    cfg = cfg.model_copy(update={"live": cfg.live.model_copy(update={"max_move": 0.001})})
    _backfill(cfg, vendor, PREV)
    con = open_store(cfg.store.path)
    r = run_daily(con, cfg, D, vendor=vendor, store_path=Path(cfg.store.path))
    assert r.status == "held" and "exceeds the 0.1% bound" in (r.error or "")
    assert latest_signal(con, "000300.SH") is None
    con.close()
    from click.testing import CliRunner

    from quant.cli import cli

    res = CliRunner().invoke(
        cli, ["--db", str(cfg.store.path), "feeds", "release", "--date", D.isoformat()]
    )
    assert res.exit_code == 0, res.output
    con = open_store(cfg.store.path)
    assert run_daily(con, cfg, D, vendor=vendor).status == "done"
    con.close()


def test_a_day_caught_up_after_its_deadline_is_late_after_one_try(
    tmp_path: Path, vendor: RecordedVendor
) -> None:
    cfg = _config(tmp_path, feeds=FEEDS[:1])
    _backfill(cfg, vendor, PREV)
    vendor.available_through, vendor.calls = PREV, []
    runner = store_runner(cfg, "000300.SH", threading.Event(), vendor=vendor)
    runner.now = Clock(datetime(2022, 12, 30, 19, 0, tzinfo=SH))  # already past 18:00
    [r] = runner.catch_up()
    assert r.status == "late" and vendor.calls.count("index_zh_a_hist") == 1
