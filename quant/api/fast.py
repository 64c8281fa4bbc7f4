"""The two hot routes answered in plain ASGI: POST /v1/forecast and GET /v1/signals/{s}/latest.

FastAPI's routing, request objects and dependency solving cost more per request than the
forecast's own work (decode, bar checks, features).  ``FastRoutes`` answers the requests that
pass at once (a key checked before, with the scope; a body the strict decoder accepts; a symbol
with a published signal) from ``quant.api.middleware`` with the same code the routes
use: ``quant.api.auth.KnownKeys``, ``quant.api.forecast`` (check, features, enqueue, render)
and the pre-rendered /latest body of the snapshot view.  Everything else goes to the FastAPI
app: a request it leaves (``None``) is answered by the routes, so every 401, 403, 404 and 422
there is the one the routes write; a refusal of ``quant.api.forecast.check`` or ``enqueue``
(404, 422, 503 with Retry-After) is answered by the app's own ``HTTPException`` handler.

Requests with an ``Origin`` header go to the app when CORS is configured (its middleware adds
the CORS headers).  ``api.fast_path = false`` switches this off (the tests compare both).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from quant.api import forecast as flow
from quant.api.auth import KnownKeys
from quant.api.batcher import Batcher
from quant.api.decode import decode_strict
from quant.api.metrics import Metrics
from quant.api.routes import router
from quant.api.schemas import SYMBOL_CHARS, SYMBOL_MAX
from quant.api.serving import ServedModel, ServiceState, SnapshotView, signal_model
from quant.api.settings import ApiConfig

FORECAST = "/v1/forecast"
LATEST = "/v1/signals/{symbol}/latest"
_SIGNALS, _LATEST_TAIL = "/v1/signals/", "/latest"
_SYMBOL = re.compile(f"{SYMBOL_CHARS}{{1,{SYMBOL_MAX}}}")  # routes.SymbolPath (fullmatch)

# What a fast route produced: the 200 body, or an exception the app's handler answers.
Answer = bytes | HTTPException
Handler = Callable[[Scope, bytes, dict[str, Any]], Awaitable[Answer | None]]


@dataclass(frozen=True)
class _Latest:
    """The /latest answers of one snapshot view: body and model version per symbol."""

    view: SnapshotView
    bodies: dict[str, tuple[bytes, str | None]]


class FastRoutes:
    """The fast path of one app (its state, batcher, keys, metrics and route objects)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self.settings: ApiConfig = app.state.settings
        self.service: ServiceState = app.state.service
        self.batcher: Batcher[ServedModel] = app.state.batcher
        self.keys = KnownKeys(app.state.keys)
        self.metrics: Metrics = app.state.metrics
        # the routes' own objects: scope["route"], which the metrics and the audit label by
        by_path = {getattr(r, "path", None): r for r in router.routes}
        self.routes: dict[str, BaseRoute] = {FORECAST: by_path[FORECAST], LATEST: by_path[LATEST]}
        self._latest = _Latest(SnapshotView(None, None), {})

    def handler(self, scope: Scope) -> tuple[Handler, str] | None:
        """The fast handler of this request and its route's path, or None (the app answers)."""
        if not self.settings.fast_path or scope.get("root_path"):
            return None
        path, method = scope["path"], scope["method"]
        if path == FORECAST and method == "POST":
            fast: tuple[Handler, str] = (self.forecast, FORECAST)
        elif method == "GET" and path.startswith(_SIGNALS) and path.endswith(_LATEST_TAIL):
            fast = (self.latest, LATEST)
        else:
            return None
        if self.settings.cors_origins and any(k == b"origin" for k, _ in scope["headers"]):
            return None
        return fast

    def _key(self, scope: Scope, needs: str, state: dict[str, Any]) -> bool:
        header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        info = self.keys.get(header, needs)
        if info is None:
            return False
        state["key_id"] = info.key_id
        return True

    async def forecast(self, scope: Scope, raw: bytes, state: dict[str, Any]) -> Answer | None:
        model = self.service.model  # pinned, as in the route
        if model is None or not model.fast_features or not self._key(scope, "forecast", state):
            return None
        body = decode_strict(raw)
        if body is None:  # pydantic decides: lax inputs it accepts, or its 400/422
            return None
        state["model_version"] = model.version
        try:
            with self.batcher.admission():
                model, d, m = flow.check(body, model, self.service, self.settings)
                item = flow.features(d, m, model)
                admitted = flow.enqueue(body, model, d, m, item, self.batcher, self.metrics)
        except HTTPException as exc:
            return exc
        p, _gate = await admitted.pending
        return flow.render(admitted, p, state["request_id"])

    async def latest(self, scope: Scope, raw: bytes, state: dict[str, Any]) -> Answer | None:
        symbol = scope["path"][len(_SIGNALS) : -len(_LATEST_TAIL)]
        if not _SYMBOL.fullmatch(symbol) or not self._key(scope, "signals:read", state):
            return None
        view = self.service.view
        if view is not self._latest.view:
            bodies = {s: (b, signal_model(b)) for s, b in view.latest.items()}
            self._latest = _Latest(view, bodies)
        found = self._latest.bodies.get(symbol)
        if found is None or symbol not in self.service.known_symbols():
            return None
        state["snapshot_version"] = view.version
        state["model_version"] = found[1]
        return found[0]

    async def refuse(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``exc`` with the app's own handler: an ``HTTPException`` as the route would,
        anything else (a bug) with the 500 the app's server-error layer gives a route's."""
        kind = StarletteHTTPException if isinstance(exc, StarletteHTTPException) else Exception
        handler = self._app.exception_handlers[kind]
        response = handler(Request(scope, receive), exc)
        if inspect.isawaitable(response):
            response = await response
        await response(scope, receive, send)
