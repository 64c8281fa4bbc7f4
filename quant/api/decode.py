"""The forecast body decoded by msgspec (typed structs, one C pass) with a pydantic fallback.

``quant.api.schemas.ForecastRequest`` (pydantic) stays the definition: it is the OpenAPI schema
and it writes every 4xx message.  The structs below accept a subset of what it accepts (strict
types, the same bounds, unknown fields refused) and one vectorised check adds what msgspec does
not know (finite numbers: ``1e999`` decodes to infinity).  Anything the fast path refuses goes
through pydantic, which either accepts it (lax inputs such as numbers sent as strings) or
raises exactly the error it always raised, so every bad body gets the same answer as before.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

import msgspec

from quant.api.schemas import SYMBOL_CHARS, SYMBOL_MAX, ForecastRequest

_Price = Annotated[float, msgspec.Meta(gt=0)]
_Volume = Annotated[float, msgspec.Meta(ge=0)]
# \Z, not $: Python's $ also matches before a trailing newline, pydantic's does not
_Symbol = Annotated[
    str, msgspec.Meta(min_length=1, max_length=SYMBOL_MAX, pattern=f"^{SYMBOL_CHARS}+\\Z")
]
_AwareDatetime = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class DailyBarIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    date: dt.date
    open: _Price
    high: _Price
    low: _Price
    close: _Price
    volume: _Volume
    amount: _Volume | None = None


class MinuteBarIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    ts: _AwareDatetime
    open: _Price
    high: _Price
    low: _Price
    close: _Price
    volume: _Volume


class ForecastIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    symbol: _Symbol
    daily: Annotated[list[DailyBarIn], msgspec.Meta(min_length=1)]
    # UNSET (falsy) when the field is absent, like pydantic's ``model_fields_set``
    intraday: list[MinuteBarIn] | msgspec.UnsetType | None = msgspec.UNSET
    intraday_symbol: _Symbol | msgspec.UnsetType | None = msgspec.UNSET

    @property
    def model_fields_set(self) -> set[str]:
        return {f for f in ("intraday", "intraday_symbol") if getattr(self, f) is not msgspec.UNSET}


_DECODER = msgspec.json.Decoder(ForecastIn)


def _finite(body: ForecastIn) -> bool:
    total = 0.0  # inf or NaN anywhere makes the sum non-finite (prices are > 0, volumes >= 0)
    for d in body.daily:
        total += d.open + d.high + d.low + d.close + d.volume + (d.amount or 0.0)
    for m in body.intraday or ():
        total += m.open + m.high + m.low + m.close + m.volume
    return math.isfinite(total)


def decode_strict(raw: bytes) -> ForecastIn | None:
    """The body as fast structs; None for what the strict decoder or the finite check refuses."""
    try:
        body = _DECODER.decode(raw)
    except msgspec.MsgspecError:
        return None
    return body if _finite(body) else None


def decode_forecast(raw: bytes) -> ForecastIn | ForecastRequest:
    """The body as fast structs, or as pydantic's model; raises pydantic's ``ValidationError``."""
    body = decode_strict(raw)
    return body if body is not None else ForecastRequest.model_validate_json(raw)
