"""The msgspec forecast decoder never accepts what pydantic refuses, and agrees on what both do."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from quant.api.decode import ForecastIn, decode_forecast
from quant.api.schemas import ForecastRequest

BAR = {"date": "2024-06-28", "open": 3461.2, "high": 3479.0, "low": 3455.1, "close": 3461.7}
MINUTE = {"ts": "2024-06-28T09:31:00+08:00", "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}
ODD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["000300.SH\n", "", "x" * 33, "2024-06-28T09:31:00Z", "1e999", "NaN"]),
)


def _pydantic(raw: bytes) -> ForecastRequest | None:
    try:
        return ForecastRequest.model_validate_json(raw)
    except ValidationError:
        return None


@given(
    field=st.sampled_from(
        [
            "symbol",
            "daily.date",
            "daily.open",
            "daily.volume",
            "daily.amount",
            "intraday.ts",
            "intraday.low",
            "extra",
        ]
    ),
    value=ODD,
)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_fast_path_accepts_only_what_pydantic_accepts(field: str, value: Any) -> None:
    body: dict[str, Any] = {
        "symbol": "000300.SH",
        "daily": [{**BAR, "volume": 1e10}],
        "intraday": [{**MINUTE, "volume": 5.0}],
    }
    where, _, name = field.partition(".")
    if where == "extra":
        body["extra"] = value
    elif name:
        body[where][0][name] = value
    else:
        body[where] = value
    raw = json.dumps(body, allow_nan=True).encode()
    want = _pydantic(raw)
    try:
        got = decode_forecast(raw)
    except ValidationError:
        assert want is None
        return
    assert want is not None, f"fast path accepted a body pydantic refuses: {raw!r}"
    if isinstance(got, ForecastIn):  # the same values either way
        assert got.symbol == want.symbol
        for a, b in zip(got.daily, want.daily, strict=True):
            assert (a.date, a.open, a.high, a.low, a.close, a.volume, a.amount) == (
                b.date, b.open, b.high, b.low, b.close, b.volume, b.amount)  # fmt: skip
        for m, n in zip(got.intraday or [], want.intraday or [], strict=True):
            assert m.ts == n.ts and (m.open, m.volume) == (n.open, n.volume)


def test_a_valid_body_takes_the_fast_path() -> None:
    raw = json.dumps({"symbol": "000300.SH", "daily": [{**BAR, "volume": 1.0}]}).encode()
    assert isinstance(decode_forecast(raw), ForecastIn)
    lax = json.dumps({"symbol": "000300.SH", "daily": [{**BAR, "volume": "1"}]}).encode()
    assert isinstance(decode_forecast(lax), ForecastRequest)  # pydantic's lax numbers still work
