"""The plain-ASGI hot routes (quant.api.fast) answer exactly what the FastAPI routes answer.

Every request goes to two apps of the same deployment, one with ``api.fast_path`` on and one
with it off: status, the error body and the headers that matter are equal; a 200 forecast
differs only in its request id and clock.  The batched features (``daily_only_batch`` and
``batch_inputs``) equal the one-sample path exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.calendar import trading_days
from feeds.synthetic import synthetic_market
from models.features_fast import batch_agrees, daily_only_batch, sample
from quant.api.app import create_app
from tests.api.conftest import Deployment
from tests.api.test_features import SPECS, _arrays
from tests.api.test_forecast import _body, _mutations

VOLATILE = ("request_id", "generated_at")


@pytest.fixture
def clients(deployment: Deployment) -> Iterator[tuple[TestClient, TestClient]]:
    cfg = {"max_body_bytes": 200_000}
    with (
        TestClient(create_app(deployment.config(fast_path=True, **cfg))) as fast,
        TestClient(create_app(deployment.config(fast_path=False, **cfg))) as slow,
    ):
        yield fast, slow


def _same(a: Any, b: Any) -> None:
    assert a.status_code == b.status_code, (a.text, b.text)
    for h in ("content-type", "x-model-version", "www-authenticate", "retry-after"):
        assert a.headers.get(h) == b.headers.get(h), h
    assert a.headers["x-request-id"]
    ja, jb = a.json(), b.json()
    assert ja.get("request_id", a.headers["x-request-id"]) == a.headers["x-request-id"]
    for k in VOLATILE:
        ja.pop(k, None), jb.pop(k, None)
    assert ja == jb


def test_forecasts_and_refusals_are_the_same(
    clients: tuple[TestClient, TestClient], deployment: Deployment
) -> None:
    fast, slow = clients
    h = {**deployment.headers(), "content-type": "application/json"}
    cases: list[tuple[str, Any]] = [(n, b) for n, b, _, _ in _mutations(deployment)]
    cases += [("daily", _body(deployment)), ("intraday", _body(deployment, intraday=True))]
    for name, body in cases:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        rs = [c.post("/v1/forecast", content=raw, headers=h) for c in (fast, slow)]
        _same(*rs)
        assert "Traceback" not in rs[0].text, name
    raw = json.dumps(_body(deployment)).encode()
    for key in ("read", "revoked", None):  # 403, 401, 401: the routes answer them
        hk = {"content-type": "application/json", **(deployment.headers(key) if key else {})}
        _same(*(c.post("/v1/forecast", content=raw, headers=hk) for c in (fast, slow)))


def test_latest_is_the_same(clients: tuple[TestClient, TestClient], deployment: Deployment) -> None:
    fast, slow = clients
    for path in (
        "/v1/signals/000300.SH/latest",
        "/v1/signals/UNKNOWN.SH/latest",
        "/v1/signals/bad%20symbol/latest",
        "/v1/signals/" + "X" * 33 + "/latest",
    ):
        for key in ("both", "read", "forecast", "revoked"):
            rs = [c.get(path, headers=deployment.headers(key)) for c in (fast, slow)]
            _same(*rs)
            if rs[0].status_code == 200:  # the pre-rendered body, byte for byte
                assert rs[0].content == rs[1].content


def test_fast_answers_are_counted_and_audited(
    clients: tuple[TestClient, TestClient], deployment: Deployment
) -> None:
    fast, _ = clients
    h = deployment.headers()
    assert fast.post("/v1/forecast", json=_body(deployment), headers=h).status_code == 200
    assert fast.get("/v1/signals/000300.SH/latest", headers=h).status_code == 200
    text = fast.get("/metrics").text
    assert 'quant_api_requests_total{method="POST",route="/v1/forecast",status="200"} 1.0' in text
    route = "/v1/signals/{symbol}/latest"
    assert f'quant_api_requests_total{{method="GET",route="{route}",status="200"}} 1.0' in text


def test_an_unexpected_error_is_the_apps_500_on_either_path(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside a fast route gets the app's own 500 (no traceback), is counted, and still
    reaches the server (re-raised); the same as the FastAPI route gives."""
    from quant.api.serving import ServiceState

    def broken(self: ServiceState) -> frozenset[str]:
        raise RuntimeError("deliberate failure")

    h, path = deployment.headers(), "/v1/signals/000300.SH/latest"
    route = "/v1/signals/{symbol}/latest"
    counted = f'quant_api_requests_total{{method="GET",route="{route}",status="500"}} 1.0'
    answers = []
    for fast_path in (True, False):
        cfg = deployment.config(fast_path=fast_path)
        for raise_server_exceptions in (False, True):
            with (
                TestClient(create_app(cfg), raise_server_exceptions=raise_server_exceptions) as c,
                monkeypatch.context() as m,
            ):
                assert c.get(path, headers=h).status_code == 200  # the key is known: fast path
                m.setattr(ServiceState, "known_symbols", broken)
                if raise_server_exceptions:  # the exception reaches the server too
                    with pytest.raises(RuntimeError, match="deliberate"):
                        c.get(path, headers=h)
                    continue
                r = c.get(path, headers=h)
                text = c.get("/metrics").text
            assert r.status_code == 500, r.text
            assert "Traceback" not in r.text and "deliberate" not in r.text
            assert r.json()["request_id"] == r.headers["x-request-id"]
            assert counted in text
            answers.append(r)
    _same(*answers)


def test_batched_features_equal_one_sample_features_for_every_spec() -> None:
    assert all(batch_agrees(s) for s in SPECS)


@given(seed=st.integers(0, 10_000), spec_i=st.integers(0, len(SPECS) - 1), n=st.integers(1, 6))
@settings(max_examples=15, deadline=None, derandomize=True)
def test_daily_only_batch_equals_samples(seed: int, spec_i: int, n: int) -> None:
    spec = SPECS[spec_i]
    end = date(2024, 3, 29)
    days = trading_days(date(2023, 1, 1), end)
    m = synthetic_market(days[-(spec.warmup + 3 * n)], end, seed=seed)
    ds = [_arrays(m.daily.head(m.daily.height - 2 * k), None)[0] for k in range(n)]
    got = daily_only_batch(ds, spec)
    assert np.array_equal(got, np.stack([sample(d, None, spec).x_daily for d in ds]))


def test_batch_inputs_equal_stacked_one_sample_inputs(deployment: Deployment) -> None:
    from quant.api.serving import ServiceState, batch_inputs

    state = ServiceState(deployment.store, deployment.models_dir, frozenset({"000300.SH"}))
    state.refresh()
    model = state.model
    assert model is not None and model.batch_features
    end = deployment.minute["session"].unique().sort()[-1]
    daily = deployment.daily.filter(deployment.daily["session"] <= end)
    d, mm = _arrays(daily, deployment.minute.filter(deployment.minute["session"] == end))
    with_intra = sample(d, mm, model.spec)
    items = [d, with_intra, d]
    got = batch_inputs(model, items)
    want = [model.inputs(sample(d, None, model.spec)), model.inputs(with_intra)]
    rows = [want[0], want[1], want[0]]
    for g, w in zip(got, zip(*rows, strict=True), strict=True):
        assert np.array_equal(g, np.stack(w))
