"""Audit trail: one row per signal/forecast answer, buffered and flushed to ``api_audit``.

Rows name the request id, the key id (never the key), route, status, model and snapshot versions
and latency.  They are written by a background task every ``flush_s`` so a request never waits
for SQLite; each row is also logged as one JSON line at DEBUG on ``quant.api.audit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from datetime import UTC, datetime

from quant.api.keys import KeyStore

log = logging.getLogger("quant.api.audit")


class _Clock:
    """Instants in UTC as ISO 8601 with six digits of microseconds (``isoformat`` leaves a zero
    fraction out; this always writes it): the date and time of day are formatted once per
    second, the microseconds per call (``datetime.now(UTC).isoformat()`` took 3.6 µs, this
    1.7 µs, timeit here: 1% of a /latest answer)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, t: float) -> str:
        """``t`` (seconds since the epoch) in that format."""
        second = int(t)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._prefix}.{min(int((t - second) * 1e6), 999_999):06d}+00:00"


class AuditLog:
    def __init__(self, keys: KeyStore, flush_s: float) -> None:
        self._keys = keys
        self._flush_s = flush_s
        self._buf: list[tuple[object, ...]] = []
        self._task: asyncio.Task[None] | None = None
        self._inflight = 0  # background writes handed to a thread and not yet committed
        self._cond = threading.Condition()
        self._clock = _Clock()

    def record(
        self,
        *,
        request_id: str,
        key_id: str | None,
        method: str,
        route: str,
        status: int,
        model_version: str | None,
        snapshot_version: str | None,
        latency_ms: float,
    ) -> None:
        at = self._clock.iso(time.time())
        row = (
            request_id,
            at,
            key_id,
            method,
            route,
            status,
            model_version,
            snapshot_version,
            round(latency_ms, 3),
        )
        self._buf.append(row)
        if log.isEnabledFor(logging.DEBUG):
            names = (
                "request_id",
                "at",
                "key_id",
                "method",
                "route",
                "status",
                "model_version",
                "snapshot_version",
                "latency_ms",
            )
            log.debug(json.dumps(dict(zip(names, row, strict=True))))

    def flush(self) -> None:
        """Write the buffer now; returns once a background write in progress has committed too
        (so every row recorded before the call is in the table)."""
        rows, self._buf = self._buf, []
        self._keys.write_audit(rows)
        with self._cond:
            self._cond.wait_for(lambda: self._inflight == 0, timeout=30)

    def _write(self, rows: list[tuple[object, ...]]) -> None:
        try:
            self._keys.write_audit(rows)
        finally:
            with self._cond:
                self._inflight -= 1
                self._cond.notify_all()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            rows, self._buf = self._buf, []
            if rows:
                with self._cond:
                    self._inflight += 1
                try:
                    await asyncio.to_thread(self._write, rows)
                except Exception:  # the audit must not take the API down; log and go on
                    log.exception("audit flush failed (%d rows)", len(rows))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush()
