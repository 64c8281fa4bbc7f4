"""Pure ASGI middleware: request id, body size limit, per-route metrics and the audit trail.

Written against raw ASGI (not ``BaseHTTPMiddleware``) because it runs on every request of the
2,000 req/s ``/latest`` route.  The body is read here, up to ``max_body`` bytes, and replayed to
the app; a larger body is answered 413 before any parsing.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quant.api.audit import AuditLog
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


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, audit: AuditLog, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.audit = audit
        self.max_body = max_body

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
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                if state.get("model_version"):
                    headers.append((b"x-model-version", str(state["model_version"]).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            replay = await self._read_body(scope, receive)
            if replay is None:
                status[0] = 413
                await _send_error(
                    send,
                    413,
                    "body_too_large",
                    f"request body over {self.max_body} bytes",
                    rid,
                )
            else:
                await self.app(scope, replay, send_wrapped)
        finally:
            self._account(scope, state, status[0], time.perf_counter() - t0)

    async def _read_body(self, scope: Scope, receive: Receive) -> Receive | None:
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return receive
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

        return replay

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
