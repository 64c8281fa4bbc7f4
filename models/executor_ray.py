"""The ``ray`` executor: independent fits as Ray core tasks, on a local or an existing cluster.

``RayExecutor()`` starts a local cluster with ``workers`` CPUs (one task per CPU, one torch
thread per task); ``RayExecutor(address="ray://head:10001")`` or ``address="auto"`` attaches to a
running one instead (then the cluster's size, not ``workers``, bounds the parallelism).  Each
``map`` call puts ``shared`` into Ray's object store once; every task receives the reference and
Ray resolves it in the worker (numpy arrays zero-copy from shared memory on the same node).

Faults: a worker process that dies mid-task (killed, out of memory, node lost) is retried by Ray
up to ``max_retries`` times; a task that raises is not retried (a fit that raises will raise
again at the same seed) and fails the whole call with a ``TaskError`` naming the task.

Ray is the optional extra ``pip install -c constraints.txt -e '.[ray]'``; this module is
imported only when ``make_executor("ray")`` is asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

try:
    import ray
    from ray.exceptions import RayError, RayTaskError
except ModuleNotFoundError as exc:  # pragma: no cover - exercised only without the extra
    raise ModuleNotFoundError(
        "the ray executor needs the optional extra: pip install -c constraints.txt -e '.[ray]'"
    ) from exc

from models.executor import TaskError

T = TypeVar("T")
R = TypeVar("R")


def _run(fn: Callable[[Any, T], R], shared: Any, task: T, threads: int) -> R:
    """Worker side: one torch thread per task (the task holds one CPU), then the call."""
    torch = sys.modules.get("torch")  # imported by fn's module when it trains; not forced here
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return fn(shared, task)


class RayExecutor:
    """Tasks on a Ray cluster; results in task order, a failing task named in ``TaskError``."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        *,
        threads_per_worker: int = 1,
        max_retries: int = 3,
        object_store_memory: int | None = None,
    ) -> None:
        self.address = address
        self.workers = workers
        self._owns = False
        if not ray.is_initialized():
            if address is None:
                ray.init(
                    num_cpus=workers,
                    object_store_memory=object_store_memory,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            self._owns = True
        self._threads = threads_per_worker
        self._remote: Any = ray.remote(
            num_cpus=threads_per_worker, max_retries=max_retries, retry_exceptions=False
        )(_run)

    def map(self, fn: Callable[[Any, T], R], tasks: Sequence[T], *, shared: Any = None) -> list[R]:
        ref = ray.put(shared)  # once per call; the tasks carry the reference, not the data
        futures = [self._remote.remote(fn, ref, t, self._threads) for t in tasks]
        out: list[R] = []
        for t, f in zip(tasks, futures, strict=True):
            try:
                out.append(ray.get(f))
            except RayError as exc:
                # the other tasks run to their end before the call fails: ray.cancel of a task
                # that is finishing races in Ray's task manager and aborts the driver process
                # ("Check failed: it != submissible_tasks_.end()", ray-project/ray#54798)
                ray.wait(futures, num_returns=len(futures))
                cause = exc.cause if isinstance(exc, RayTaskError) else exc
                raise TaskError(f"task {t!r} failed: {type(cause).__name__}: {cause}") from exc
        return out

    def close(self) -> None:
        """Shut the cluster down if this executor started it (an attached cluster stays up)."""
        if self._owns and ray.is_initialized():
            ray.shutdown()
        self._owns = False
