"""A persistent APScheduler 3.x job store on the standard library's sqlite3.

APScheduler's own persistent store needs SQLAlchemy; this one keeps the same layout (job id,
next run time as a UTC timestamp, pickled job state) in a small SQLite file beside the store.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime

from feeds.schema import create_tables
from quant.schema import JOB_TABLES


class SQLiteJobStore(BaseJobStore):
    """Jobs survive restarts; thread-safe (one connection guarded by a lock)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        create_tables(self._db, JOB_TABLES)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _reconstitute(self, state: bytes) -> Job:
        job_state = pickle.loads(state)
        job_state["jobstore"] = self
        job = Job.__new__(Job)
        job.__setstate__(job_state)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def _jobs(self, where: str = "", params: tuple[Any, ...] = ()) -> list[Job]:
        rows = self._query(
            f"SELECT id, job_state FROM apscheduler_jobs {where} ORDER BY next_run_time", params
        )
        jobs, broken = [], []
        for job_id, state in rows:
            try:
                jobs.append(self._reconstitute(state))
            except Exception:
                self._logger.exception("unable to restore job %s; removing it", job_id)
                broken.append(job_id)
        for job_id in broken:
            self._query("DELETE FROM apscheduler_jobs WHERE id = ?", (job_id,))
        return jobs

    def lookup_job(self, job_id: str) -> Job | None:
        rows = self._query("SELECT job_state FROM apscheduler_jobs WHERE id = ?", (job_id,))
        return self._reconstitute(rows[0][0]) if rows else None

    def get_due_jobs(self, now: datetime) -> list[Job]:
        return self._jobs("WHERE next_run_time <= ?", (datetime_to_utc_timestamp(now),))

    def get_next_run_time(self) -> datetime | None:
        rows = self._query(
            "SELECT min(next_run_time) FROM apscheduler_jobs WHERE next_run_time IS NOT NULL"
        )
        return utc_timestamp_to_datetime(rows[0][0]) if rows and rows[0][0] is not None else None

    def get_all_jobs(self) -> list[Job]:
        jobs = self._jobs()
        self._fix_paused_jobs_sorting(jobs)
        return jobs

    def _state(self, job: Job) -> tuple[float | None, bytes]:
        return datetime_to_utc_timestamp(job.next_run_time), pickle.dumps(job.__getstate__())

    def add_job(self, job: Job) -> None:
        t, state = self._state(job)
        try:
            self._query("INSERT INTO apscheduler_jobs VALUES (?, ?, ?)", (job.id, t, state))
        except sqlite3.IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        t, state = self._state(job)
        with self._lock:
            cur = self._db.execute(
                "UPDATE apscheduler_jobs SET next_run_time = ?, job_state = ? WHERE id = ?",
                (t, state, job.id),
            )
            if cur.rowcount == 0:
                raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        with self._lock:
            cur = self._db.execute("DELETE FROM apscheduler_jobs WHERE id = ?", (job_id,))
            if cur.rowcount == 0:
                raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        self._query("DELETE FROM apscheduler_jobs")

    def shutdown(self) -> None:
        with self._lock:
            self._db.close()
