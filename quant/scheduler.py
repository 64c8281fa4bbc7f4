"""``quant schedule``: the daily pipeline after the close on XSHG trading days (APScheduler 3.x).

- The trigger fires at ``run_time`` (Asia/Shanghai) on trading days only (pandas-market-calendars
  holidays via ``feeds.calendar``); ``coalesce=True``, ``max_instances=1`` and a misfire grace
  long enough that a machine asleep at 15:30 still runs when it wakes.
- On start, and at every firing, the runner catches up: every trading day after the last
  completed run whose run time has passed is run, oldest first (at most ``catch_up_sessions``).
- One process owns the store (``feeds.lock``); DuckDB is opened only while a run executes and a
  snapshot is published after each run, so readers never wait for the writer.
- SIGTERM/SIGINT: the running pipeline stops at its next step boundary (every step commits
  atomically), the scheduler shuts down, the lock is released.
- Late data: a run whose bars have not arrived ends ``waiting_for_data``; the runner tries again
  every ``live.retry_interval_s`` until ``live.deadline`` (exchange time on the run date), then
  marks the day ``late`` and stops the catch-up there (days run in order).  The next firing or
  catch-up runs the late day again and completes it once its data is in.
- The calendar's horizon: no firing and no due day lies past it (``feeds.calendar``); from
  ``calendar.warn_days`` before it, every start and firing logs a warning.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from feeds.calendar import CalendarHorizonError, horizon_warning, is_trading_day, trading_days
from feeds.lock import StoreLock
from feeds.snapshot import publish_snapshot
from feeds.store import open_store
from quant.config import QuantConfig, apply_calendar
from quant.jobstore import SQLiteJobStore
from quant.pipeline import RunResult, last_done, mark_late, run_daily, stale_runs

log = logging.getLogger(__name__)

JOB_ID = "daily-pipeline"
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TradingDayTrigger(BaseTrigger):
    """Fires at ``run_time`` in ``timezone`` on XSHG trading days only."""

    def __init__(self, hour: int, minute: int, timezone: str) -> None:
        self.hour, self.minute, self.timezone = hour, minute, timezone

    def run_instant(self, d: date) -> datetime:
        tz = ZoneInfo(self.timezone)
        return datetime(d.year, d.month, d.day, self.hour, self.minute, tzinfo=tz)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        start = previous_fire_time + timedelta(microseconds=1) if previous_fire_time else now
        d = start.astimezone(ZoneInfo(self.timezone)).date()
        for _ in range(60):  # the longest XSHG closure is about 10 days
            try:
                if is_trading_day(d) and self.run_instant(d) >= start:
                    return self.run_instant(d)
            except CalendarHorizonError as exc:
                log.error("no run scheduled: %s", exc)
                return None
            d += timedelta(days=1)
        return None

    def __str__(self) -> str:
        return f"xshg trading days at {self.hour:02d}:{self.minute:02d} {self.timezone}"


@dataclass
class DailyRunner:
    """Runs due days oldest first, never two at once.  Clock and runner are injectable."""

    trigger: TradingDayTrigger
    run_day: Callable[[date], RunResult]
    last_done: Callable[[], date | None]
    now: Clock = _utc_now
    catch_up_sessions: int = 20
    stop: threading.Event = field(default_factory=threading.Event)
    deadline: Callable[[date], datetime] | None = None  # late-data deadline of a run date
    retry_interval_s: float = 300.0
    mark_late: Callable[[date], RunResult | None] | None = None
    pending: Callable[[], list[date]] = list  # late, held or waiting days not done yet
    warn: Callable[[date], str | None] = lambda _: None  # the calendar horizon's warning
    _busy: threading.Lock = field(default_factory=threading.Lock)
    _pending: threading.Event = field(default_factory=threading.Event)

    def due_days(self) -> list[date]:
        """Trading days whose run time has passed and that follow the last completed run."""
        now = self.now()
        today = now.astimezone(ZoneInfo(self.trigger.timezone)).date()
        done = self.last_done()
        lo = done + timedelta(days=1) if done else today - timedelta(days=30)
        due = [d for d in trading_days(lo, today) if self.trigger.run_instant(d) <= now]
        if done is None:
            due = due[-1:]  # a fresh store starts with the latest due day, not a backfill
        elif self.catch_up_sessions:
            due = due[-self.catch_up_sessions :]
        else:
            due = []
        # Days that waited past their deadline (late) or were held run again first.
        return sorted(set(due) | {d for d in self.pending() if d <= today})

    def run(self, d: date) -> RunResult | None:
        """Run day ``d`` unless a pipeline is already running (then None)."""
        if not self._busy.acquire(blocking=False):
            log.warning("a pipeline is already running; %s not started", d)
            return None
        try:
            return self.run_day(d)
        finally:
            self._busy.release()

    def catch_up(self) -> list[RunResult]:
        """Run every due day in order; stop at the first failure (retried next time).

        A call while another catch-up runs returns at once, and the running one looks for due
        days again when it finishes, so a firing during a long catch-up is not lost.
        """
        if not self._busy.acquire(blocking=False):
            log.info("a pipeline is already running; its catch-up will pick up new due days")
            self._pending.set()
            return []
        try:
            out: list[RunResult] = []
            while True:
                self._pending.clear()
                failed = self._run_due(out)
                if failed or self.stop.is_set() or not self._pending.is_set():
                    return out
        finally:
            self._busy.release()

    def run_waiting(self, d: date) -> RunResult:
        """Run ``d``; while its data is missing, retry until its deadline, then mark it late."""
        r = self.run_day(d)
        while r.status == "waiting_for_data" and self.deadline is not None:
            left = (self.deadline(d) - self.now()).total_seconds()
            if left <= 0:
                late = self.mark_late(d) if self.mark_late else None
                return late or r
            wait_s = min(self.retry_interval_s, left)
            log.info("%s waiting for data (%s); next try in %.0fs", d, r.error, wait_s)
            if self.stop.wait(wait_s):
                return r
            r = self.run_day(d)
        return r

    def _run_due(self, out: list[RunResult]) -> bool:
        today = self.now().astimezone(ZoneInfo(self.trigger.timezone)).date()
        warning = self.warn(today)
        if warning:
            log.warning("%s", warning)
        for d in self.due_days():
            if self.stop.is_set():
                return False
            r = self.run_waiting(d)
            out.append(r)
            log.info("%s: %s %s", d, r.status, r.headline or r.error or "")
            if r.status not in ("done", "already_done", "skipped"):
                return True
        return False


_RUNNERS: dict[str, DailyRunner] = {}  # process-local: the one scheduler's runner, by job key


def scheduled_tick(key: str) -> None:
    """The APScheduler job (referenced by name in the persistent store)."""
    runner = _RUNNERS.get(key)
    if runner is None:
        log.error("no runner registered for %s in this process", key)
        return
    runner.catch_up()


def build_scheduler(
    cfg: QuantConfig, key: str, jobstore: Path, *, now: Clock | None = None
) -> BackgroundScheduler:
    """A scheduler with the daily job in a persistent SQLite job store (not started)."""
    s = cfg.pipeline.scheduler
    sched = BackgroundScheduler(
        jobstores={"default": SQLiteJobStore(jobstore)},
        timezone=ZoneInfo(s.timezone),
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": s.misfire_grace_s,
        },
    )
    sched.add_job(
        scheduled_tick,
        trigger=TradingDayTrigger(s.run_time.hour, s.run_time.minute, s.timezone),
        args=[key],
        id=JOB_ID,
        name="daily pipeline",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=s.misfire_grace_s,
    )
    return sched


def store_runner(
    cfg: QuantConfig, symbol: str, stop: threading.Event, *, vendor: Any = None
) -> DailyRunner:
    """A runner that opens the store only for the duration of each run (``vendor``: the feed
    adapters' vendor API, default the akshare module)."""
    path = Path(cfg.store.path)
    s = cfg.pipeline.scheduler

    def run_day(d: date) -> RunResult:
        con = open_store(path)
        try:
            return run_daily(con, cfg, d, symbol=symbol, store_path=path, stop=stop, vendor=vendor)
        finally:
            con.close()

    def done() -> date | None:
        con = open_store(path)
        try:
            return last_done(con, symbol)
        finally:
            con.close()

    def late(d: date) -> RunResult | None:
        con = open_store(path)
        try:
            r = mark_late(con, symbol, d)
            publish_snapshot(con, path)  # readers (/readyz, /metrics) see the late day
            return r
        finally:
            con.close()

    def pending() -> list[date]:
        con = open_store(path)
        try:
            return [d for d, _, _ in stale_runs(con, symbol)]
        finally:
            con.close()

    def deadline(d: date) -> datetime:
        return datetime.combine(d, cfg.live.deadline, tzinfo=ZoneInfo(s.timezone))

    trig = TradingDayTrigger(s.run_time.hour, s.run_time.minute, s.timezone)
    return DailyRunner(
        trig,
        run_day,
        done,
        catch_up_sessions=s.catch_up_sessions,
        stop=stop,
        deadline=deadline,
        retry_interval_s=cfg.live.retry_interval_s,
        mark_late=late,
        pending=pending,
        warn=lambda today: horizon_warning(today, cfg.calendar.warn_days),
    )


def serve(cfg: QuantConfig, *, symbol: str | None = None) -> None:
    """Own the store, catch up, then run on schedule until SIGTERM/SIGINT."""
    sym = symbol or cfg.data.symbol
    path = Path(cfg.store.path)
    apply_calendar(cfg)
    lock = StoreLock(path, "quant schedule").acquire()  # LockHeldError for a second scheduler
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("signal %d: finishing the current step, then shutting down", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    key = str(path.resolve())
    _RUNNERS[key] = store_runner(cfg, sym, stop)
    jobstore = cfg.pipeline.scheduler.jobstore or path.with_name(path.stem + ".jobs.sqlite")
    sched = build_scheduler(cfg, key, jobstore)
    try:
        sched.start()
        job = sched.get_job(JOB_ID)
        log.info("scheduler owns %s; next run %s", path, job.next_run_time if job else None)
        _RUNNERS[key].catch_up()
        while not stop.wait(1.0):
            pass
    finally:
        if sched.running:
            sched.shutdown(wait=True)
        _RUNNERS.pop(key, None)
        lock.release()
        log.info("scheduler stopped; lock released")
