"""The FastAPI application: wiring of keys, snapshot/model state, batcher, metrics and audit.

``create_app(config)`` builds one instance; ``quant serve`` runs it under uvicorn.  Background
tasks: the batcher's collector, the audit flusher, the metrics flush (``FLUSH_S``) and a poller
that calls ``ServiceState.refresh`` every ``api.reload_poll_s`` (new snapshot, new champion).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from models.features_fast import canary
from quant.api import heap
from quant.api.audit import AuditLog
from quant.api.auth import SCHEME, SECURITY_SCHEME, FirstChecks
from quant.api.batcher import Batcher
from quant.api.fast import FastRoutes
from quant.api.keys import KeyStore, keys_path
from quant.api.metrics import FLUSH_S, Metrics
from quant.api.middleware import ServiceMiddleware
from quant.api.routes import router
from quant.api.schemas import ForecastRequest
from quant.api.serving import ServedModel, ServiceState, batch_inputs, run_forward
from quant.config import QuantConfig, apply_calendar, models_dir

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}

DESCRIPTION = """Signals of the CSI 300 next-session direction for broker systems.

Authenticate with an API key from `quant keys create` as `Authorization: Bearer qk_...`.
Scopes: `signals:read` (signals, models) and `forecast` (POST /v1/forecast).  Every answer
carries `X-Request-ID`; answers produced by a model also carry `X-Model-Version` and name the
version in the body.  Errors are `{"error", "message", "request_id"}` and never a stack trace.
"""


def _error(request: Request, status: int, message: str, **extra: Any) -> JSONResponse:
    rid = request.scope.get("state", {}).get("request_id")
    body = {"error": _CODES.get(status, "error"), "message": message, "request_id": rid, **extra}
    return JSONResponse(body, status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    resp = _error(request, exc.status_code, str(exc.detail))
    for k, v in (exc.headers or {}).items():
        resp.headers[k] = v
    return resp


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return _error(request, 400, "malformed JSON body")
    details = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in errors[:20]
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return _error(request, 422, f"{where}: {first['msg']}", details=details)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
    return _error(request, 500, "internal error; quote the request id to the operators")


def _example_request(model: ServedModel, symbol: str) -> dict[str, Any]:
    """A request the serving model accepts: the seeded canary's closed sessions (SYNTHETIC)."""
    d, _ = canary(model.spec)
    daily = [
        {
            "date": s.isoformat(),
            "open": float(d.open[i]),
            "high": float(d.high[i]),
            "low": float(d.low[i]),
            "close": float(d.close[i]),
            "volume": float(d.volume[i]),
            **({"amount": float(d.amount[i])} if model.spec.use_amount else {}),
        }
        for i, s in enumerate(d.sessions)
    ]
    return {"symbol": symbol, "daily": daily}


def _forecast_schema(app: FastAPI) -> dict[str, Any]:
    """ForecastRequest with the limits this server enforces now (model warm-up, maxima)."""
    settings, model = app.state.settings, app.state.service.model
    body = ForecastRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    props = body["properties"]
    props["daily"]["maxItems"] = settings.max_daily_bars
    if model is not None:
        props["daily"]["minItems"] = model.spec.warmup
        # Given at all, it must name the model's instrument; it must come with ``intraday``.
        props["intraday_symbol"] = {
            "type": "string",
            "enum": [model.intraday_symbol],
            "description": props["intraday_symbol"]["description"],
        }
        body["dependentRequired"] = {"intraday": ["intraday_symbol"]}
        body["examples"] = [_example_request(model, min(app.state.service.served_symbols))]
    for branch in props["intraday"].get("anyOf", [props["intraday"]]):
        if branch.get("type") == "array":
            branch["maxItems"] = settings.max_intraday_bars
    return body


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document plus the bearer scheme and the forecast body's schema.

    Regenerated when the serving model changes: ``daily.minItems`` is its warm-up.
    """
    model = app.state.service.model
    key = model.version if model is not None else None
    if app.openapi_schema and getattr(app.state, "openapi_model", "unset") == key:
        return app.openapi_schema
    app.state.openapi_model = key
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    comps = doc.setdefault("components", {})
    comps.setdefault("securitySchemes", {})[SCHEME] = SECURITY_SCHEME
    schemas = comps.setdefault("schemas", {})
    body = _forecast_schema(app)
    schemas.update(body.pop("$defs", {}))
    schemas["ForecastRequest"] = body
    for path, ops in doc["paths"].items():
        if path.startswith("/v1/"):
            for op in ops.values():
                op["security"] = [{SCHEME: []}]
    app.openapi_schema = doc
    return doc


class ServiceApp(FastAPI):
    """FastAPI with ``ServiceMiddleware`` outermost: an HTTP request meets it first and reaches
    FastAPI's own stack (server-error, telemetry and body-limit layers, routing) only when it is
    not a fast route's.  As one of ``user_middleware`` it sat inside those layers, which cost
    about 8% of a /latest answer (py-spy) and do nothing for the fast routes: the fast path
    answers its own errors (``quant.api.fast.FastRoutes.refuse``)."""

    service: ServiceMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.service is not None and scope["type"] == "http":
            scope["app"] = self
            await self.service(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's middleware stack and routes (what ``ServiceMiddleware`` hands on to)."""
        await super().__call__(scope, receive, send)


# FastAPI's OpenTelemetry switched off (``api.opentelemetry``): no per-request provider check
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(config: QuantConfig, *, keys: KeyStore | None = None) -> FastAPI:
    """The API for ``config`` (store, api and data sections)."""
    settings = config.api
    apply_calendar(config)  # the operator's extra holidays and horizon (next sessions, checks)
    store = Path(config.store.path)
    key_store = keys or KeyStore(keys_path(store))
    state = ServiceState(
        store,
        models_dir(config),
        frozenset({config.data.symbol}),
        torchscript=settings.torchscript,
        intraday_symbol=config.data.intraday_symbol,
    )
    batcher: Batcher[ServedModel] = Batcher(
        run_forward,
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_ms / 1e3,
        queue_size=settings.queue_size,
        thread_init=lambda: torch.set_num_threads(settings.torch_threads),
        inline=settings.inline_forward,
        prepare=batch_inputs,
    )
    metrics = Metrics(lambda: batcher.depth)
    batcher._on_batch = metrics.observe_batch
    audit = AuditLog(key_store, settings.audit_flush_s)

    async def poll() -> None:
        while True:
            await asyncio.sleep(settings.reload_poll_s)
            reloads = state.reloads
            try:
                changed = await asyncio.to_thread(state.refresh)
            except Exception:  # a bad snapshot must not stop the poller
                log.exception("refresh failed")
                continue
            if changed:  # the new snapshot view (and model) join the frozen heap
                heap.settle(collect=state.reloads != reloads)

    async def flush_metrics() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            metrics.flush()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads)
        switch = sys.getswitchinterval()  # process-wide; restored on shutdown
        sys.setswitchinterval(settings.gil_switch_ms / 1e3)
        await asyncio.to_thread(state.refresh)
        heap.configure()
        batcher.start()
        audit.start()
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(poll(), name="reload-poller"),
            loop.create_task(flush_metrics(), name="metrics-flush"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            metrics.flush()
            await batcher.stop()
            await audit.stop()
            sys.setswitchinterval(switch)

    app = ServiceApp(
        title="CSI 300 signal API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={500: {"description": "internal error (a bug; never a stack trace)"}},
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.calendar_warn_days = config.calendar.warn_days
    app.state.service = state
    app.state.keys = key_store
    app.state.key_checks = FirstChecks()
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.audit = audit
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.service = ServiceMiddleware(
        app.stack,
        metrics=metrics,
        audit=audit,
        max_body=settings.max_body_bytes,
        fast=FastRoutes(app),
    )
    return app
