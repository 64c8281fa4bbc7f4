"""Where independent fits run: in this process, in worker processes, or on a Ray cluster.

The walk-forward and the replay hand their fits (one per seed, candidate and model) to one
small interface so that the same code runs on a laptop, on both cores of this machine or on a
cluster, and gives the same numbers at the same seeds:

    ex = make_executor("process", workers=2)
    results = ex.map(fit_one, tasks, shared=block_inputs)   # fit_one(shared, task) -> result

``shared`` travels once per ``map`` call (Ray's object store; for processes, one file that each
worker reads once), the tasks carry only their small parameters.  Results come back in task
order.  A task that raises fails the whole call with the task named (``TaskError``): never a
silently missing fit.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import pickle
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
ExecutorName = Literal["local", "process", "ray"]


class TaskError(RuntimeError):
    """A task failed; the message names it (block, model, seed as the task's repr shows)."""


class Executor(Protocol):
    name: str

    def map(
        self, fn: Callable[[Any, T], R], tasks: Sequence[T], *, shared: Any = None
    ) -> list[R]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Every task in this process, one after another (the default; no new dependency)."""

    name = "local"

    def map(self, fn: Callable[[Any, T], R], tasks: Sequence[T], *, shared: Any = None) -> list[R]:
        out: list[R] = []
        for t in tasks:
            try:
                out.append(fn(shared, t))
            except Exception as exc:
                raise TaskError(f"task {t!r} failed: {exc}") from exc
        return out

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)
def _load_shared(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _call(fn: Callable[[Any, T], R], shared_path: str | None, task: T) -> R:
    return fn(_load_shared(shared_path) if shared_path else None, task)


class ProcessExecutor:
    """Tasks on a pool of spawned worker processes, one torch thread each (both cores here).

    Spawned, not forked: a fork after torch has started its thread pool can deadlock.  The pool
    lives as long as the executor, so the start-up cost (importing torch) is paid once.
    """

    name = "process"

    def __init__(self, workers: int = 2, threads_per_worker: int = 1) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads_per_worker,),
        )

    def map(self, fn: Callable[[Any, T], R], tasks: Sequence[T], *, shared: Any = None) -> list[R]:
        # ``shared`` is written once per call; each worker reads it once (cached by path).
        with tempfile.TemporaryDirectory(prefix="quant-shared-") as tmp:
            path = None
            if shared is not None:
                path = os.path.join(tmp, "shared.pkl")
                with open(path, "wb") as f:
                    pickle.dump(shared, f, protocol=pickle.HIGHEST_PROTOCOL)
            futures = [self._pool.submit(_call, fn, path, t) for t in tasks]
            out: list[R] = []
            for t, fut in zip(tasks, futures, strict=True):
                try:
                    out.append(fut.result())
                except Exception as exc:
                    for g in futures:
                        g.cancel()
                    raise TaskError(f"task {t!r} failed: {exc}") from exc
            return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(
    name: ExecutorName = "local", *, workers: int = 2, address: str | None = None
) -> Executor:
    """The executor called ``name``; ``ray`` needs the optional extra (``.[ray]``)."""
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    if name == "ray":
        from models.executor_ray import RayExecutor  # optional dependency, imported on demand

        return RayExecutor(address=address, workers=workers)
    raise ValueError(f"unknown executor {name!r}; expected local, process or ray")
