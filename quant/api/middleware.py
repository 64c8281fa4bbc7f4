"""Pure ASGI middleware: request id, body size limit, fast routes, metrics and the audit trail.

Written against raw ASGI (not ``BaseHTTPMiddleware``) because it runs on every request of the
hot routes; it is the outermost layer (``quant.api.app.ServiceApp``).  The body is read here,
up to ``max_body`` bytes, and replayed to the app; a larger body is answered 413 before any
parsing.  ``quant.api.fast`` answers the hot routes' requests that pass at once here, before
FastAPI's routing; the rest go on to the app.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quant.api.audit import AuditLog
from quant.api.fast import FastRoutes, Handler
from quant.api.metrics import Metrics

AUDITED = ("/v1/forecast", "/v1/signals/")


async def _send_error(send: Send, status: int, code: str, message: str, rid: str) -> None:
    body = json.dumps({"error": code, "message": message, "request_id": rid}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _own(state: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The headers this middleware adds to every answer: request id, model version."""
    own = [(b"x-request-id", state["request_id"].encode())]
    if state.get("model_version"):
        own.append((b"x-model-version", str(state["model_version"]).encode()))
    return own


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        audit: AuditLog,
        max_body: int,
        fast: FastRoutes | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.audit = audit
        self.max_body = max_body
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = os.urandom(8).hex()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        status = [500]

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *_own(state)]}
            await send(message)

        try:
            read = await self._read_body(scope, receive)
            if read is None:
                status[0] = 413
                await _send_error(
                    send,
                    413,
                    "body_too_large",
                    f"request body over {self.max_body} bytes",
                    rid,
                )
                return
            replay, body = read
            fast = self.fast.handler(scope) if self.fast is not None else None
            if fast is None or not await self._fast(
                fast, scope, replay, body, send, send_wrapped, status
            ):
                await self.app(scope, replay, send_wrapped)
        finally:
            self._account(scope, state, status[0], time.perf_counter() - t0)

    async def _fast(
        self,
        fast: tuple[Handler, str],
        scope: Scope,
        replay: Receive,
        body: bytes,
        send: Send,
        wrapped: Send,
        status: list[int],
    ) -> bool:
        """Answer through the fast route; False when it leaves the request to the app.

        A 200 goes straight to the server's ``send`` with this middleware's headers written in;
        a refusal goes through ``wrapped`` (the app's handler writes it)."""
        assert self.fast is not None
        handler, route = fast
        state = scope["state"]
        scope["route"] = self.fast.routes[route]  # the label of a 200, a refusal or a 500
        try:
            answer = await handler(scope, body, state)
        except Exception as exc:  # a bug: the app's 500, then the server logs it (re-raised)
            await self.fast.refuse(exc, scope, replay, wrapped)
            raise
        if answer is None:
            del scope["route"]  # the app's router labels what it answers
            return False
        if isinstance(answer, bytes):
            status[0] = 200
            headers = [
                (b"content-length", str(len(answer)).encode()),
                (b"content-type", b"application/json"),
                *_own(state),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
        else:
            await self.fast.refuse(answer, scope, replay, wrapped)
        return True

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[Receive, bytes] | None:
        """The receive channel to hand on and the body read from it; None when over max_body."""
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return receive, b""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return None
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay, body

    def _account(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        route_obj = scope.get("route")
        route = getattr(route_obj, "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.count(route, method, status, seconds)
        if route.startswith(AUDITED):
            self.audit.record(
                request_id=state["request_id"],
                key_id=state.get("key_id"),
                method=method,
                route=route,
                status=status,
                model_version=state.get("model_version"),
                snapshot_version=state.get("snapshot_version"),
                latency_ms=seconds * 1e3,
            )
