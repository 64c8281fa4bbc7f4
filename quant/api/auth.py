"""Bearer-key authentication with scopes: 401 without a valid key, 403 without the scope."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from quant.api.keys import KeyInfo, KeyStore

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="API key from `quant keys create`: `Authorization: Bearer qk_...`",
)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(scope: str) -> Callable[..., Awaitable[KeyInfo]]:
    """A dependency that admits keys holding ``scope`` and records the key id for the audit."""

    async def dependency(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> KeyInfo:
        if creds is None or creds.scheme.lower() != "bearer":
            raise HTTPException(
                401, "missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE
            )
        keys: KeyStore = request.app.state.keys
        token = creds.credentials
        # A token seen before is checked in microseconds; a new one costs one scrypt (~50 ms),
        # which must not stall the event loop.
        info = (
            keys.verify(token) if keys.seen(token) else await asyncio.to_thread(keys.verify, token)
        )
        if info is None:
            raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
        request.state.key_id = info.key_id
        if scope not in info.scopes:
            raise HTTPException(403, f"this key lacks the '{scope}' scope")
        return info

    return dependency
