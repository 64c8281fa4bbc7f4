"""Bearer-key authentication with scopes: 401 without a valid key, 403 without the scope.

A plain dependency that reads the ``Authorization`` header itself (FastAPI's ``HTTPBearer``
adds a nested dependency per request, a measurable share of the /latest route's budget); the
OpenAPI document declares the scheme in ``app.openapi`` instead.
"""

from __future__ import annotations

import asyncio
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


def known_key(header: str, keys: KeyStore, scope: str) -> KeyInfo | None:
    """The key of a request that passes at once: a token checked before, valid, with ``scope``.

    None for everything else (no key, a new token that needs its scrypt check, invalid,
    revoked, without the scope): ``require`` then answers it (quant.api.fast hands it over).
    """
    token = bearer(header)
    if token is None or not keys.seen(token):
        return None
    info = keys.verify(token)
    return info if info is not None and scope in info.scopes else None


def require(scope: str) -> Callable[[Request], Awaitable[KeyInfo]]:
    """A dependency that admits keys holding ``scope`` and records the key id for the audit."""

    async def dependency(request: Request) -> KeyInfo:
        token = bearer(request.headers.get("authorization", ""))
        if token is None:
            raise HTTPException(
                401, "missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE
            )
        keys: KeyStore = request.app.state.keys
        # A token seen before is checked in microseconds; a new one costs one scrypt (~50 ms),
        # which must not stall the event loop.
        if keys.seen(token):
            info = keys.verify(token)
        else:
            info = await asyncio.to_thread(keys.verify, token)
        if info is None:
            raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
        request.state.key_id = info.key_id
        if scope not in info.scopes:
            raise HTTPException(403, f"this key lacks the '{scope}' scope")
        return info

    return dependency
