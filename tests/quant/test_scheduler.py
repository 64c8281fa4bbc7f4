"""Scheduler with a controllable clock: trading days only, run time, catch-up, one at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feeds.lock import LockHeldError, StoreLock
from quant.config import QuantConfig
from quant.jobstore import SQLiteJobStore
from quant.pipeline import RunResult
from quant.scheduler import JOB_ID, DailyRunner, TradingDayTrigger, build_scheduler, serve

SH = ZoneInfo("Asia/Shanghai")
TRIGGER = TradingDayTrigger(15, 30, "Asia/Shanghai")
CLI = [sys.executable, "-c", "from quant.cli import main; main()"]
SECOND_OWNER = (
    "import sys; from feeds.lock import StoreLock; StoreLock(sys.argv[1], 'second').acquire()"
)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (sh(2024, 9, 27, 10, 0), sh(2024, 9, 27, 15, 30)),  # trading day, before the run time
        (sh(2024, 9, 27, 15, 30), sh(2024, 9, 27, 15, 30)),  # exactly at the run time
        (sh(2024, 9, 27, 16, 0), sh(2024, 9, 30, 15, 30)),  # Friday evening -> Monday
        (sh(2024, 9, 30, 16, 0), sh(2024, 10, 8, 15, 30)),  # National Day week is closed
        (sh(2024, 10, 1, 15, 30), sh(2024, 10, 8, 15, 30)),  # holiday at the run time
    ],
)
def test_trigger_fires_on_trading_days_at_the_run_time(now: datetime, expected: datetime) -> None:
    assert TRIGGER.get_next_fire_time(None, now) == expected


def test_trigger_after_a_fire_moves_to_the_next_trading_day() -> None:
    fired = sh(2024, 9, 30, 15, 30)
    assert TRIGGER.get_next_fire_time(fired, fired) == sh(2024, 10, 8, 15, 30)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def _runner(clock: Clock, done: list[date], **kw: object) -> DailyRunner:
    def run_day(d: date) -> RunResult:
        done.append(d)
        return RunResult(d, "000300.SH", "done")

    return DailyRunner(
        TRIGGER,
        run_day,
        lambda: max(done) if done else None,
        now=clock,
        **kw,  # type: ignore[arg-type]
    )


def test_runs_only_at_the_configured_time_on_trading_days() -> None:
    done = [date(2024, 9, 26)]
    clock = Clock(sh(2024, 9, 27, 15, 29))
    r = _runner(clock, done)
    assert r.catch_up() == []  # one minute early
    clock.t = sh(2024, 9, 27, 15, 30)
    assert [x.run_date for x in r.catch_up()] == [date(2024, 9, 27)]
    clock.t = sh(2024, 9, 28, 15, 30)  # Saturday
    assert r.catch_up() == []
    clock.t = sh(2024, 9, 30, 15, 30)
    assert [x.run_date for x in r.catch_up()] == [date(2024, 9, 30)]
    clock.t = sh(2024, 10, 7, 18, 0)  # last day of the National Day closure
    assert r.catch_up() == []
    assert done == [date(2024, 9, 26), date(2024, 9, 27), date(2024, 9, 30)]


def test_catches_up_missed_trading_days_in_order_after_downtime() -> None:
    done = [date(2024, 9, 25)]
    clock = Clock(sh(2024, 10, 9, 10, 0))  # down from 25 Sep evening to 9 Oct morning
    runs = _runner(clock, done).catch_up()
    assert [x.run_date for x in runs] == [
        date(2024, 9, 26),
        date(2024, 9, 27),
        date(2024, 9, 30),
        date(2024, 10, 8),  # 9 Oct is not due before 15:30
    ]


def test_catch_up_is_bounded_and_a_fresh_store_starts_at_the_latest_day() -> None:
    clock = Clock(sh(2024, 10, 9, 16, 0))
    assert [x.run_date for x in _runner(clock, []).catch_up()] == [date(2024, 10, 9)]
    done = [date(2024, 9, 20)]
    runs = _runner(clock, done, catch_up_sessions=2).catch_up()
    assert [x.run_date for x in runs] == [date(2024, 10, 8), date(2024, 10, 9)]


def test_catch_up_stops_at_a_failure_and_retries_it_next_time() -> None:
    calls: list[date] = []
    done = [date(2024, 9, 25)]
    fail = {date(2024, 9, 27)}

    def run_day(d: date) -> RunResult:
        calls.append(d)
        if d in fail:
            return RunResult(d, "000300.SH", "failed")
        done.append(d)
        return RunResult(d, "000300.SH", "done")

    r = DailyRunner(TRIGGER, run_day, lambda: max(done), now=Clock(sh(2024, 10, 9, 10, 0)))
    r.catch_up()
    assert calls == [date(2024, 9, 26), date(2024, 9, 27)]
    fail.clear()
    r.catch_up()
    assert calls[2:] == [date(2024, 9, 27), date(2024, 9, 30), date(2024, 10, 8)]


def test_never_runs_two_pipelines_at_once() -> None:
    started, release = threading.Event(), threading.Event()
    active, peak, done = [0], [0], []

    def run_day(d: date) -> RunResult:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        started.set()
        release.wait(5)
        active[0] -= 1
        done.append(d)
        return RunResult(d, "000300.SH", "done")

    clock = Clock(sh(2024, 10, 9, 16, 0))
    r = DailyRunner(TRIGGER, run_day, lambda: max(done, default=None), now=clock)
    t = threading.Thread(target=r.catch_up)
    t.start()
    assert started.wait(5)
    assert r.run(date(2024, 10, 9)) is None  # a second pipeline while one runs is refused
    clock.t = sh(2024, 10, 10, 15, 30)  # the next firing arrives while 9 Oct still runs
    assert r.catch_up() == []  # ... returns at once
    release.set()
    t.join(5)
    assert not t.is_alive() and peak[0] == 1
    assert done == [date(2024, 10, 9), date(2024, 10, 10)]  # ... and is not lost


def test_job_is_persistent_coalesced_single_instance(tmp_path: Path) -> None:
    cfg = QuantConfig.model_validate({"store": {"path": str(tmp_path / "q.duckdb")}})
    sched = build_scheduler(cfg, "k", tmp_path / "jobs.sqlite")
    sched.start(paused=True)
    job = sched.get_job(JOB_ID)
    assert job.coalesce is True and job.max_instances == 1
    assert job.misfire_grace_time == cfg.pipeline.scheduler.misfire_grace_s >= 3600
    assert isinstance(job.trigger, TradingDayTrigger)
    nxt = job.next_run_time.astimezone(SH)
    assert (nxt.hour, nxt.minute) == (15, 30)
    sched.shutdown(wait=False)
    stored = SQLiteJobStore(tmp_path / "jobs.sqlite")
    again = stored.lookup_job(JOB_ID)
    assert again is not None and again.next_run_time == job.next_run_time
    assert again.args == ("k",)
    stored.shutdown()


def test_second_owner_gets_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "q.duckdb"
    with StoreLock(store, "first scheduler"):
        with pytest.raises(
            LockHeldError, match=rf"locked by PID {os.getpid()} \(first scheduler\)"
        ):
            StoreLock(store, "second").acquire()
        cfg = QuantConfig.model_validate({"store": {"path": str(store)}})
        with pytest.raises(LockHeldError):
            serve(cfg)
    StoreLock(store, "after release").acquire().release()


def test_schedule_process_stops_on_sigterm_and_releases_the_store(
    make_env: Callable[..., QuantConfig], tmp_path: Path
) -> None:
    cfg = make_env()
    env = {**os.environ, "QUANT_DB": str(cfg.store.path)}
    env["QUANT__DATA__REAL_DATA_DIR"] = str(tmp_path / "none")
    env["QUANT__PIPELINE__INGEST_SYNTHETIC"] = "false"
    proc = subprocess.Popen(
        [*CLI, "schedule"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        lines = []
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if not line:
                break
            if "scheduler owns" in line:
                break
        assert any("scheduler owns" in x for x in lines), "".join(lines)
        second = subprocess.run(  # another process: the lock is per open file, across processes
            [sys.executable, "-c", SECOND_OWNER, str(cfg.store.path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0 and f"PID {proc.pid}" in second.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    StoreLock(cfg.store.path, "after").acquire().release()
