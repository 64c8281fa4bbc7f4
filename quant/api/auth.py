"""Bearer-key authentication with scopes: 401 without a valid key, 403 without the scope.

A plain dependency that reads the ``Authorization`` header itself (FastAPI's ``HTTPBearer``
adds a nested dependency per request, a measurable share of the /latest route's budget); the
OpenAPI document declares the scheme in ``app.openapi`` instead.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

from quant.api.keys import KeyInfo, KeyStore

SCHEME = "ApiKey"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "API key from `quant keys create`: `Authorization: Bearer qk_...`",
}
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when there is none."""
    kind, _, token = header.partition(" ")
    token = token.strip()
    return token if kind.lower() == "bearer" and token else None


class KnownKeys:
    """The keys of the fast routes' requests that pass at once, by their ``Authorization`` header.

    A header whose token ``KeyStore.verify`` accepted before is remembered by its SHA-256 (never
    the token) with its key id and stored hash; a warm check is one hash, one look-up and the key
    row's current state (``KeyStore.current``: a revocation or a replaced row shows at once).
    ``get`` is None for everything else (no key, a new token that needs its scrypt check,
    invalid, revoked, without the scope): ``require`` then answers it (``quant.api.fast`` hands
    it over).  One per app, used on the event loop.
    """

    LIMIT = 10_000  # headers remembered; the oldest is forgotten first

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._by_header: dict[bytes, tuple[str, bytes]] = {}

    def get(self, header: bytes, scope: str) -> KeyInfo | None:
        digest = hashlib.sha256(header).digest()
        known = self._by_header.get(digest)
        if known is None:
            info = self._first(header, digest)
        else:
            now = self.keys.current(known[0])
            info = now[0] if now is not None and now[1] == known[1] else None
        return info if info is not None and info.active and scope in info.scopes else None

    def _first(self, header: bytes, digest: bytes) -> KeyInfo | None:
        token = bearer(header.decode("latin-1"))
        if token is None or not self.keys.seen(token):
            return None
        info = self.keys.verify(token)
        now = self.keys.current(info.key_id) if info is not None else None
        if info is None or now is None:
            return None
        if len(self._by_header) >= self.LIMIT:
            del self._by_header[next(iter(self._by_header))]
        self._by_header[digest] = (info.key_id, now[1])
        return info


class FirstChecks:
    """The scrypt check of a token not seen before, run once however many requests carry it.

    A broker that opens its connection pool at once after a restart sends the same new key on
    every connection: without this each request ran its own ~50 ms scrypt on the thread pool
    (64 connections: seconds of CPU on two cores, first-second p99 near 400 ms).  Requests that
    arrive while a token's check runs await that check.  One per app, used on the event loop.
    """

    def __init__(self) -> None:
        self._running: dict[bytes, asyncio.Future[KeyInfo | None]] = {}

    async def verify(self, keys: KeyStore, token: str) -> KeyInfo | None:
        """``keys.verify(token)``, the scrypt off the event loop and shared with concurrent
        requests of the same token."""
        if keys.seen(token):  # checked before: microseconds
            return keys.verify(token)
        digest = hashlib.sha256(token.encode()).digest()
        check = self._running.get(digest)
        if check is None:
            check = asyncio.ensure_future(asyncio.to_thread(keys.verify, token))
            self._running[digest] = check
            check.add_done_callback(lambda _: self._running.pop(digest, None))
        # shielded: a request that goes away does not cancel the others' check
        return await asyncio.shield(check)


def require(scope: str) -> Callable[[Request], Awaitable[KeyInfo]]:
    """A dependency that admits keys holding ``scope`` and records the key id for the audit."""

    async def dependency(request: Request) -> KeyInfo:
        token = bearer(request.headers.get("authorization", ""))
        if token is None:
            raise HTTPException(
                401, "missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE
            )
        # A token seen before is checked in microseconds; a new one costs one scrypt (~50 ms),
        # run off the event loop, once for all the requests that carry it meanwhile.
        checks: FirstChecks = request.app.state.key_checks
        info = await checks.verify(request.app.state.keys, token)
        if info is None:
            raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
        request.state.key_id = info.key_id
        if scope not in info.scopes:
            raise HTTPException(403, f"this key lacks the '{scope}' scope")
        return info

    return dependency
