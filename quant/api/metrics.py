"""Prometheus metrics of one API instance (own registry, so several apps can share a process).

Under ``quant serve --workers N`` every worker process writes its values to the shared folder
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, switched on by that
variable, which the supervisor sets before it starts the workers); ``/metrics`` of any worker
then renders the sum over all workers (counters, histograms, queue depth) and one ``pid``
series per live worker for the model and snapshot it serves.

Requests are tallied in plain Python per label set (``count``) and added to the Prometheus
values by ``flush``: at every ``render`` and every ``FLUSH_S`` (the app's lifespan task).  A
multiprocess value costs a lock and an mmap write per update, three per request (about 9 µs
here, 4% of a /latest answer); a tally costs one dict look-up and two additions.  Another
worker's requests therefore reach a scrape up to ``FLUSH_S`` late, and a worker that is killed
loses at most its last ``FLUSH_S`` of request counts.  ``count`` and ``flush`` run on the
event loop (the middleware, the lifespan task, the async /metrics route): one thread.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from quant.api.freshness import Freshness

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

disable_created_metrics()  # the *_created series only add noise to every scrape

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 48, 64, 128)
FLUSH_S = 0.25  # how often request tallies reach the Prometheus values


class _Tally:
    """Requests of one (route, method, status) since the last flush: count, seconds, and the
    count per latency bucket (the last one is +Inf), as a histogram keeps them."""

    __slots__ = ("buckets", "n", "seconds")

    def __init__(self) -> None:
        self.n = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)


class Metrics:
    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self._queue_fn = queue_depth
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "quant_api_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "quant_api_request_seconds",
            "time to answer, by route",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "quant_api_batch_size", "samples per forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.forward = Histogram(
            "quant_api_forward_seconds",
            "duration of one batched forward pass",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "quant_api_queue_depth", "forecasts waiting", registry=r, multiprocess_mode="livesum"
        )
        if not self.multiprocess:  # a callback cannot be read from another process
            self.queue_depth.set_function(queue_depth)
        self.rejected = Counter(
            "quant_api_queue_rejections", "forecasts refused with 503 (queue full)", registry=r
        )
        self.model = Gauge(
            "quant_api_model_info",
            "model version serving (1)",
            ["version"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.snapshot = Gauge(
            "quant_api_snapshot_info",
            "snapshot version read (1)",
            ["version"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.reloads = Counter("quant_api_model_reloads", "champion switches", registry=r)
        self.stale = Gauge(
            "quant_store_stale",
            "1 when a run date after the last completed run is late or held",
            registry=r,
        )
        self.stale_runs = Gauge(
            "quant_store_stale_runs", "late or held run dates after the last completed", registry=r
        )
        self.horizon_days = Gauge(
            "quant_calendar_horizon_days",
            "days until the exchange holiday list ends (negative once passed)",
            registry=r,
        )
        self.horizon_warning = Gauge(
            "quant_calendar_horizon_warning",
            "1 from calendar.warn_days before the horizon on",
            registry=r,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._tallies: dict[tuple[str, str, int], _Tally] = {}
        self._model_label: str | None = None
        self._snapshot_label: str | None = None

    def count(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request, tallied until the next ``flush``."""
        key = (route, method, status)
        t = self._tallies.get(key)
        if t is None:
            t = self._tallies[key] = _Tally()
        t.n += 1
        t.seconds += seconds
        t.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # first bound >= seconds

    def flush(self) -> None:
        """Add the tallies to the Prometheus values (label children cached: ``labels()`` is
        slow).  The histogram's bucket and sum values are its own (``_buckets``, ``_sum``, what
        ``observe`` adds to; prometheus-client is pinned and a test compares with ``observe``)."""
        tallies, self._tallies = self._tallies, {}
        for key, t in tallies.items():
            child = self._children.get(key)
            if child is None:
                route, method, status = key
                child = self._children[key] = (
                    self.requests.labels(route, method, str(status)),
                    self.latency.labels(route, method),
                )
            child[0].inc(t.n)
            child[1]._sum.inc(t.seconds)
            for value, n in zip(child[1]._buckets, t.buckets, strict=True):
                if n:
                    value.inc(n)

    def set_freshness(self, f: Freshness) -> None:
        self.stale.set(1 if f.stale else 0)
        self.stale_runs.set(len(f.stale))
        self.horizon_days.set(f.horizon_days_left)
        self.horizon_warning.set(1 if f.horizon_warning else 0)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.forward.observe(seconds)
        if self.multiprocess:
            self.queue_depth.set(self._queue_fn())

    def set_model(self, version: str | None) -> None:
        if version != self._model_label:
            if self._model_label is not None:
                self.model.remove(self._model_label)
                self.reloads.inc()
            if version is not None:
                self.model.labels(version).set(1)
            self._model_label = version

    def set_snapshot(self, version: str | None) -> None:
        if version != self._snapshot_label:
            if self._snapshot_label is not None:
                self.snapshot.remove(self._snapshot_label)
            if version is not None:
                self.snapshot.labels(version).set(1)
            self._snapshot_label = version

    def render(self) -> bytes:
        """This process's metrics, or every worker's under multiprocess mode."""
        self.flush()
        if not self.multiprocess:
            return generate_latest(self.registry)
        self.queue_depth.set(self._queue_fn())
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)
