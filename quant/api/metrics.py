"""Prometheus metrics of one API instance (own registry, so several apps can share a process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from quant.api.freshness import Freshness

disable_created_metrics()  # the *_created series only add noise to every scrape

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 48, 64, 128)


class Metrics:
    def __init__(self, queue_depth: Callable[[], float]) -> None:
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
        self.queue_depth = Gauge("quant_api_queue_depth", "forecasts waiting", registry=r)
        self.queue_depth.set_function(queue_depth)
        self.rejected = Counter(
            "quant_api_queue_rejections", "forecasts refused with 503 (queue full)", registry=r
        )
        self.model = Gauge(
            "quant_api_model_info", "model version serving (1)", ["version"], registry=r
        )
        self.snapshot = Gauge(
            "quant_api_snapshot_info", "snapshot version read (1)", ["version"], registry=r
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
        self._model_label: str | None = None
        self._snapshot_label: str | None = None

    def count(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request (label children cached: ``labels()`` is slow per call)."""
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        child[0].inc()
        child[1].observe(seconds)

    def set_freshness(self, f: Freshness) -> None:
        self.stale.set(1 if f.stale else 0)
        self.stale_runs.set(len(f.stale))
        self.horizon_days.set(f.horizon_days_left)
        self.horizon_warning.set(1 if f.horizon_warning else 0)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.forward.observe(seconds)

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
        return generate_latest(self.registry)
