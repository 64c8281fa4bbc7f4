"""Exclusive ownership of a store: ``fcntl.flock`` on ``<store>.lock``.

DuckDB allows one writing process per file.  The scheduler holds this lock for its whole life
and every other writing command (``ingest``, ``fetch``, ``predict``, ``backtest --record``,
``run-daily``, ``replay``, ``finetune``, ``main``) for one command, so two writers never race; the
lock dies with its process (even on SIGKILL), so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class LockHeldError(RuntimeError):
    """Another process owns the store."""


def lock_path(store: str | Path) -> Path:
    p = Path(store)
    return p.with_name(p.name + ".lock")


class StoreLock:
    """Context manager; ``LockHeldError`` names the holder's pid and command when busy."""

    def __init__(self, store: str | Path, purpose: str) -> None:
        self.path = lock_path(store)
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.close(fd)
            pid, _, purpose = holder.removeprefix("pid ").partition(": ")
            raise LockHeldError(
                f"store is locked by PID {pid or 'unknown'} ({purpose or 'unknown purpose'}); "
                f"lock file {self.path}. Stop it first, or read the published snapshot instead."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {self.purpose}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
