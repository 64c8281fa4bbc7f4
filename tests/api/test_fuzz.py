"""Property-based fuzzing of every route (hypothesis, bounded): no input produces a 5xx.

Three generators: arbitrary paths, methods, query strings and auth headers over the route table;
arbitrary JSON bodies for POST /v1/forecast; and bar lists close to valid ones with single
values perturbed (NaN, infinities, huge numbers, wrong types, shuffled or foreign dates), which
reach the deeper session/OHLC/history checks.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant.api.app import create_app
from quant.api.keys import KeyStore, keys_path
from quant.config import QuantConfig
from tests.support.demo import Demo, request_body

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


class Fuzzed:
    def __init__(self, client: TestClient, keys: dict[str, str], base: dict[str, Any]) -> None:
        self.client, self.keys, self.base = client, keys, base

    def check(self, method: str, url: str, headers: dict[str, str], content: bytes = b"") -> None:
        raw = {k.encode(): v.encode("latin-1") for k, v in headers.items()}
        r = self.client.request(method, url, headers=raw, content=content or None)
        assert r.status_code < 500, (method, url, r.status_code, r.text[:500])
        assert "Traceback" not in r.text
        json_body = r.headers.get("content-type", "").startswith("application/json")
        if r.status_code >= 400 and json_body and method != "HEAD":
            doc = r.json()
            assert isinstance(doc.get("error"), str) and isinstance(doc.get("message"), str), doc


@pytest.fixture(scope="module")
def fuzzed(demo_template: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz") / "deploy"
    shutil.copytree(demo_template.store.parent, root)
    store = root / demo_template.store.name
    ks = KeyStore(keys_path(store))
    keys = {
        "both": ks.create(["forecast", "signals:read"])[0],
        "read": ks.create(["signals:read"])[0],
        "forecast": ks.create(["forecast"])[0],
    }
    ks.close()
    cfg = QuantConfig.model_validate(
        {"store": {"path": str(store)}, "api": {"max_body_bytes": 100_000}}
    )
    base = request_body(demo_template.daily, None, demo_template.daily["session"][-1], n_daily=25)
    with TestClient(create_app(cfg), raise_server_exceptions=False) as c:
        yield Fuzzed(c, keys, base)


def _auth(keys: dict[str, str]) -> st.SearchStrategy[dict[str, str]]:
    return st.one_of(
        st.just({}),
        st.sampled_from(sorted(keys.values())).map(lambda k: {"Authorization": f"Bearer {k}"}),
        st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=60).map(
            lambda t: {"Authorization": t}
        ),
        st.text(st.characters(codec="ascii", exclude_characters="\r\n"), max_size=80).map(
            lambda t: {"Authorization": f"Bearer {t}"}
        ),
    )


SEGMENT = st.one_of(
    st.just("000300.SH"), st.text(min_size=1, max_size=40).map(lambda s: quote(s, safe=""))
)
QUERY_VALUE = st.one_of(st.dates().map(str), st.text(max_size=20), st.just("2024-13-45"))


@st.composite
def get_requests(draw: st.DrawFn) -> tuple[str, str]:
    seg = draw(SEGMENT)
    path = draw(
        st.sampled_from(
            [
                f"/v1/signals/{seg}/latest",
                f"/v1/signals/{seg}",
                "/v1/models",
                "/healthz",
                "/readyz",
                "/metrics",
                "/openapi.json",
                f"/{seg}",
                f"/v1/signals/{seg}/latest/{seg}",
            ]
        )
    )
    params = draw(
        st.dictionaries(
            st.sampled_from(["start", "end", "all_versions", "x"]), QUERY_VALUE, max_size=3
        )
    )
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    method = draw(st.sampled_from(["GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD"]))
    return method, path + (f"?{query}" if query else "")


@given(data=st.data())
@FUZZ
def test_every_route_without_a_5xx(fuzzed: Fuzzed, data: st.DataObject) -> None:
    method, url = data.draw(get_requests())
    fuzzed.check(method, url, data.draw(_auth(fuzzed.keys)))


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@given(body=JSON, auth=st.sampled_from(["both", "read", "forecast"]))
@FUZZ
def test_arbitrary_json_bodies(fuzzed: Fuzzed, body: Any, auth: str) -> None:
    raw = json.dumps(body, allow_nan=True).encode()
    h = {"Authorization": f"Bearer {fuzzed.keys[auth]}", "content-type": "application/json"}
    fuzzed.check("POST", "/v1/forecast", h, raw)


ODD_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
)


@st.composite
def near_valid_bodies(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    body = json.loads(json.dumps(base))
    bars = body["daily"]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(bars) - 1))
        field = draw(st.sampled_from(["date", "open", "high", "low", "close", "volume", "amount"]))
        bars[i][field] = draw(ODD_VALUES)
    if draw(st.booleans()):
        body["daily"] = draw(st.permutations(bars))[: draw(st.integers(0, len(bars)))]
    if draw(st.booleans()):
        start = draw(st.sampled_from(["09:31", "11:30", "12:00", "15:00", "15:01", "00:00"]))
        day = bars[-1]["date"] if bars and isinstance(bars[-1].get("date"), str) else "2024-06-28"
        body["intraday"] = [
            {
                "ts": draw(st.sampled_from([f"{day}T{start}:00+08:00", f"{day}T{start}:00", "x"])),
                "open": draw(ODD_VALUES),
                "high": 10.0,
                "low": 9.0,
                "close": 9.5,
                "volume": 1.0,
            }
        ]
    if draw(st.booleans()):
        body["symbol"] = draw(st.sampled_from(["000300.SH", "", "../etc", "X" * 40, 5]))
    return json.dumps(body, allow_nan=True).encode()


@given(data=st.data())
@FUZZ
def test_near_valid_bars(fuzzed: Fuzzed, data: st.DataObject) -> None:
    raw = data.draw(near_valid_bodies(fuzzed.base))
    h = {"Authorization": f"Bearer {fuzzed.keys['forecast']}", "content-type": "application/json"}
    fuzzed.check("POST", "/v1/forecast", h, raw)


def test_valid_base_body_is_accepted(fuzzed: Fuzzed) -> None:
    h = {"Authorization": f"Bearer {fuzzed.keys['forecast']}"}
    r = fuzzed.client.post("/v1/forecast", json=fuzzed.base, headers=h)
    assert r.status_code == 200, r.text
    assert math.isfinite(r.json()["p_up"])


def test_openapi_documents_every_route(fuzzed: Fuzzed) -> None:
    doc = fuzzed.client.get("/openapi.json").json()
    paths = doc["paths"]
    assert set(paths) == {
        "/v1/signals/{symbol}/latest",
        "/v1/signals/{symbol}",
        "/v1/forecast",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    fc = paths["/v1/forecast"]["post"]
    assert fc["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ForecastRequest"
    )
    assert {"200", "400", "401", "403", "404", "413", "422", "503"} <= set(fc["responses"])
    assert fc["security"] == [{"ApiKey": []}]
    schemas = doc["components"]["schemas"]
    assert {"ForecastRequest", "DailyBar", "MinuteBar", "ForecastResponse", "ErrorBody"} <= set(
        schemas
    )
    assert schemas["ForecastResponse"]["examples"]
