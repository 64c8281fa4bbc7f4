"""The ``api`` section of the configuration tree: the broker signal HTTP service."""

from __future__ import annotations

from pydantic import Field

from feeds.frozen import Frozen


class ApiConfig(Frozen):
    """Host, batching, limits and reload cadence of ``quant serve`` (frozen, unknown keys fail)."""

    host: str = Field("127.0.0.1", description="bind address (loopback unless told otherwise)")
    port: int = Field(8300, ge=1, le=65535, description="TCP port")
    workers: int = Field(
        1,
        ge=1,
        le=32,
        description="server processes sharing the port, each with its own batcher, model and "
        "hot reload; a worker that dies is replaced (quant.api.workers)",
    )
    max_batch: int = Field(64, ge=1, le=1024, description="samples per forward pass at most")
    max_wait_ms: float = Field(
        3.0, ge=0.0, le=1000.0, description="how long the batcher waits to fill a batch"
    )
    queue_size: int = Field(
        512, ge=1, description="forecast requests waiting at most; beyond it the API answers 503"
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="request bodies above this are refused with 413"
    )
    max_daily_bars: int = Field(2000, ge=1, description="daily bars one forecast may send")
    max_intraday_bars: int = Field(
        4800, ge=0, description="1-minute bars one forecast may send (20 sessions)"
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="origins allowed by CORS; empty switches CORS off"
    )
    reload_poll_s: float = Field(
        1.0, gt=0.0, description="seconds between checks for a new snapshot (signals, champion)"
    )
    torch_threads: int = Field(1, ge=1, description="intra-op threads of the inference worker")
    gil_switch_ms: float = Field(
        0.5,
        gt=0.0,
        le=100.0,
        description="Python thread switch interval while serving (CPython's default is 5 ms); "
        "the inference thread re-takes the GIL several times per forward pass and would wait up "
        "to this long each time behind the busy event loop",
    )
    inline_forward: bool = Field(
        True,
        description="run forward passes on the event loop instead of the inference thread: no "
        "GIL hand-offs (measured: a 27-sample pass took 1.3 ms inline, 30-70 ms on the thread "
        "behind a saturated loop); blocks the loop for one pass, so switch it off for models "
        "whose pass takes tens of milliseconds",
    )
    torchscript: bool = Field(
        True,
        description="serve through a frozen TorchScript trace of the champion (checked against "
        "eager mode on a canary at load; eager when it differs or cannot be traced)",
    )
    fast_path: bool = Field(
        True,
        description="answer POST /v1/forecast and GET /v1/signals/{s}/latest in plain ASGI "
        "(quant.api.fast) when the request passes at once; everything else, and every "
        "refusal the routes write, goes through FastAPI",
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's own OpenTelemetry spans, metrics and logs (used only when an "
        "OpenTelemetry provider is configured in the process); off, FastAPI skips the check of "
        "the global providers it otherwise makes on every request (three environment lookups, "
        "~3% of a forecast's CPU). The service's metrics are Prometheus, at /metrics",
    )
    audit_flush_s: float = Field(
        0.5, gt=0.0, description="seconds between flushes of the audit buffer to SQLite"
    )
