"""Signals, models, health, metrics and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from feeds.snapshot import open_snapshot
from quant.api.app import create_app
from quant.api.keys import KeyStore, keys_path
from quant.signals import signals_between
from tests.api.conftest import Deployment
from tests.support.demo import request_body


@pytest.fixture
def client(deployment: Deployment) -> Iterator[TestClient]:
    with TestClient(create_app(deployment.config())) as c:
        yield c


def test_latest_is_the_newest_version_of_the_newest_session(
    client: TestClient, deployment: Deployment
) -> None:
    r = client.get("/v1/signals/000300.SH/latest", headers=deployment.headers("read"))
    assert r.status_code == 200
    sig = r.json()
    con = open_snapshot(deployment.store)
    stored = signals_between(con, "000300.SH", all_versions=True)
    con.close()
    newest = max(stored, key=lambda s: (s.session, s.version))
    assert sig["session"] == newest.session.isoformat()
    assert sig["version"] == newest.version == 2  # the demo re-ran the last session once
    assert sig["p_up"] == newest.p_up
    assert sig["model_version"] == deployment.champion == r.headers["x-model-version"]
    assert set(sig) >= {
        "symbol", "session", "p_up", "direction", "confidence", "model_version",
        "last_bar_ts", "generated_at", "decision_session", "snapshot_version",
    }  # fmt: skip
    assert sig["last_bar_ts"].endswith("Z")
    assert r.headers["x-request-id"]


def test_range_and_versions(client: TestClient, deployment: Deployment) -> None:
    h = deployment.headers("read")
    r = client.get("/v1/signals/000300.SH", headers=h)
    assert r.status_code == 200
    newest = r.json()["signals"]
    assert len(newest) == 3 and [s["session"] for s in newest] == sorted(
        s["session"] for s in newest
    )
    every = client.get("/v1/signals/000300.SH", params={"all_versions": "true"}, headers=h)
    assert len(every.json()["signals"]) == 4  # one session has two immutable versions
    first = newest[0]["session"]
    only = client.get(
        "/v1/signals/000300.SH", params={"start": first, "end": first}, headers=h
    ).json()["signals"]
    assert [s["session"] for s in only] == [first]
    bad = client.get(
        "/v1/signals/000300.SH", params={"start": "2024-06-28", "end": "2024-06-01"}, headers=h
    )
    assert bad.status_code == 200 and bad.json()["signals"] == []  # an empty interval
    assert (
        client.get("/v1/signals/000300.SH", params={"start": "June"}, headers=h).status_code == 422
    )


def test_unknown_symbol_is_404(client: TestClient, deployment: Deployment) -> None:
    h = deployment.headers("read")
    for path in ("/v1/signals/600000.SH/latest", "/v1/signals/600000.SH"):
        r = client.get(path, headers=h)
        assert r.status_code == 404
        assert "unknown symbol" in r.json()["message"]


def test_models_health_ready(client: TestClient, deployment: Deployment) -> None:
    m = client.get("/v1/models", headers=deployment.headers("read")).json()
    assert m["champion"] == m["serving"] == deployment.champion
    assert m["feature_warmup"] == 20
    assert [v["version_id"] for v in m["versions"] if v["champion"]] == [deployment.champion]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"model": "ok", "snapshot": "ok"}


def test_metrics_text(client: TestClient, deployment: Deployment) -> None:
    body = request_body(deployment.daily, None, deployment.daily["session"][-1])
    client.post("/v1/forecast", json=body, headers=deployment.headers())
    client.get("/v1/signals/000300.SH/latest", headers=deployment.headers())
    client.get("/v1/signals/000300.SH/latest")
    text = client.get("/metrics").text
    assert 'quant_api_requests_total{method="POST",route="/v1/forecast",status="200"} 1.0' in text
    route = "/v1/signals/{symbol}/latest"
    assert f'quant_api_requests_total{{method="GET",route="{route}",status="401"}} 1.0' in text
    assert 'quant_api_request_seconds_bucket{le="0.05",method="POST",route="/v1/forecast"}' in text
    assert "quant_api_batch_size_count 1.0" in text
    assert "quant_api_queue_depth 0.0" in text
    assert f'quant_api_model_info{{version="{deployment.champion}"}} 1.0' in text


def test_audit_rows_name_request_key_model_and_snapshot(
    client: TestClient, deployment: Deployment
) -> None:
    body = request_body(deployment.daily, None, deployment.daily["session"][-1])
    r1 = client.post("/v1/forecast", json=body, headers=deployment.headers("forecast"))
    r2 = client.get("/v1/signals/000300.SH/latest", headers=deployment.headers("read"))
    r3 = client.get("/v1/signals/000300.SH/latest")
    client.app.state.audit.flush()  # type: ignore[attr-defined]
    rows = {r[0]: r for r in KeyStore(keys_path(deployment.store)).audit_rows()}
    ids = {k.name: k.key_id for k in KeyStore(keys_path(deployment.store)).list_keys()}
    a1, a2, a3 = (rows[r.headers["x-request-id"]] for r in (r1, r2, r3))
    assert a1[2:7] == (ids["forecast-only"], "POST", "/v1/forecast", 200, deployment.champion)
    assert a2[2:7] == (
        ids["read-only"],
        "GET",
        "/v1/signals/{symbol}/latest",
        200,
        deployment.champion,
    )
    assert a2[7] == r2.json()["snapshot_version"]
    assert a3[2] is None and a3[5] == 401
    assert all(a[8] > 0 for a in (a1, a2, a3))


def test_cors_is_off_by_default(client: TestClient, deployment: Deployment) -> None:
    r = client.get(
        "/v1/signals/000300.SH/latest",
        headers={**deployment.headers(), "Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in r.headers
    pre = client.options(
        "/v1/forecast",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in pre.headers
    assert pre.status_code == 405


def test_cors_when_configured(deployment: Deployment) -> None:
    with TestClient(create_app(deployment.config(cors_origins=["https://desk.example"]))) as c:
        r = c.get(
            "/v1/signals/000300.SH/latest",
            headers={**deployment.headers(), "Origin": "https://desk.example"},
        )
        assert r.headers["access-control-allow-origin"] == "https://desk.example"
