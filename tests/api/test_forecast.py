"""POST /v1/forecast: the answer equals the forecaster's own; every bad input is a clear 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from feeds.calendar import next_trading_day
from feeds.resample import resample_intraday
from feeds.snapshot import open_snapshot
from quant import registry
from quant.api.app import create_app
from tests.api.conftest import Deployment
from tests.support.demo import request_body


@pytest.fixture
def client(deployment: Deployment) -> Iterator[TestClient]:
    with TestClient(create_app(deployment.config(max_body_bytes=200_000))) as c:
        yield c


def _expected(dep: Deployment, end: date, intraday: bool) -> float:
    con = open_snapshot(dep.store)
    _, fc = registry.load_champion(con, dep.models_dir)
    con.close()
    daily = dep.daily.filter(pl.col("session") <= end).tail(45)
    intra = None
    if intraday:
        minute = dep.minute.filter(pl.col("session") == end)
        intra = resample_intraday(minute, fc.spec.intraday_minutes)
    return fc.predict(daily, intra).p_up


@pytest.mark.parametrize("intraday", [False, True])
def test_forecast_matches_the_forecaster(
    client: TestClient, deployment: Deployment, intraday: bool
) -> None:
    end = deployment.minute["session"].unique().sort()[-3]
    body = request_body(deployment.daily, deployment.minute if intraday else None, end)
    r = client.post("/v1/forecast", json=body, headers=deployment.headers())
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["model_version"] == deployment.champion == r.headers["x-model-version"]
    assert got["request_id"] == r.headers["x-request-id"]
    assert got["decision_session"] == end.isoformat()
    assert got["session"] == next_trading_day(end).isoformat()
    assert got["used_intraday"] is intraday
    assert got["p_up"] == pytest.approx(_expected(deployment, end, intraday), abs=1e-5)
    assert got["direction"] == ("up" if got["p_up"] > 0.5 else "down")


def test_a_model_trained_with_amount_requires_it(
    client: TestClient, deployment: Deployment
) -> None:
    body = request_body(deployment.daily, None, deployment.daily["session"][-1])
    assert client.post("/v1/forecast", json=body, headers=deployment.headers()).json()[
        "used_amount"
    ]
    for bar in body["daily"]:
        del bar["amount"]
    r = client.post("/v1/forecast", json=body, headers=deployment.headers())
    assert r.status_code == 422
    assert "amount (turnover, CNY) is required" in r.json()["message"]


def _body(dep: Deployment, intraday: bool = False) -> dict[str, Any]:
    end = dep.minute["session"].unique().sort()[-1]
    return request_body(dep.daily, dep.minute if intraday else None, end)


def _mutations(dep: Deployment) -> list[tuple[str, Any, int, str]]:
    """(name, body or raw bytes, expected status, a word the message must contain)."""
    out: list[tuple[str, Any, int, str]] = []
    b = _body(dep)
    out.append(("malformed json", b'{"symbol": "000300.SH", "daily": [', 400, "JSON"))
    out.append(("not an object", b"[1, 2, 3]", 422, ""))
    out.append(("empty body", b"", 400, "JSON"))
    x = json.loads(json.dumps(b))
    x["daily"][3]["close"] = "high"
    out.append(("wrong type", x, 422, "close"))
    x = json.loads(json.dumps(b))
    x["daily"][3]["close"] = -5
    out.append(("negative price", x, 422, "close"))
    out.append(
        (
            "nan",
            json.dumps(b)
            .replace('"close": ' + json.dumps(b["daily"][5]["close"]), '"close": NaN', 1)
            .encode(),
            422,
            "close",
        )
    )
    out.append(
        (
            "inf",
            json.dumps(b)
            .replace('"high": ' + json.dumps(b["daily"][5]["high"]), '"high": Infinity', 1)
            .encode(),
            422,
            "high",
        )
    )
    x = json.loads(json.dumps(b))
    x["daily"] = x["daily"][-5:]
    out.append(("too few bars", x, 422, "too few daily bars"))
    x = json.loads(json.dumps(b))
    x["daily"][10], x["daily"][11] = x["daily"][11], x["daily"][10]
    out.append(("out of order", x, 422, "ascending"))
    x = json.loads(json.dumps(b))
    del x["daily"][10]
    out.append(("missing session", x, 422, "missing"))
    x = json.loads(json.dumps(b))
    x["daily"][-1]["date"] = "2024-06-29"  # a Saturday
    out.append(("not a trading day", x, 422, "trading day"))
    x = json.loads(json.dumps(b))
    x["daily"][7]["high"] = x["daily"][7]["low"] * 0.9
    out.append(("ohlc", x, 422, "high"))
    x = json.loads(json.dumps(b))
    x["symbol"] = "600000.SH"
    out.append(("unknown symbol", x, 404, "unknown symbol"))
    x = json.loads(json.dumps(b))
    x["extra"] = 1
    out.append(("unknown field", x, 422, "extra"))
    x = json.loads(json.dumps(b))
    del x["daily"]
    out.append(("missing field", x, 422, "daily"))
    i = _body(dep, intraday=True)
    x = json.loads(json.dumps(i))
    end = x["daily"][-1]["date"]
    x["intraday"][120]["ts"] = f"{end}T12:15:00+08:00"  # in place of the 13:01 bar
    out.append(("bar in the lunch break", x, 422, "session"))
    x = json.loads(json.dumps(i))
    x["intraday"][5], x["intraday"][6] = x["intraday"][6], x["intraday"][5]
    out.append(("intraday out of order", x, 422, "ascending"))
    x = json.loads(json.dumps(i))
    x["intraday"][0]["ts"] = "2024-06-28T09:31:00"
    out.append(("naive timestamp", x, 422, "timezone"))
    x = json.loads(json.dumps(i))
    x["intraday"] = [dict(x["intraday"][0], ts="2024-07-01T09:31:00+08:00")]
    out.append(("intraday after the last session", x, 422, "no daily bar"))
    return out


def test_bad_inputs_get_clear_4xx(client: TestClient, deployment: Deployment) -> None:
    h = {**deployment.headers(), "content-type": "application/json"}
    for name, body, status, word in _mutations(deployment):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = client.post("/v1/forecast", content=raw, headers=h)
        assert r.status_code == status, (name, r.text)
        doc = r.json()
        assert doc["error"] and doc["request_id"], name
        assert word.lower() in doc["message"].lower() + json.dumps(doc.get("details")).lower(), (
            name,
            doc,
        )
        assert "Traceback" not in r.text


def test_oversize_body_is_413(client: TestClient, deployment: Deployment) -> None:
    body = json.dumps(_body(deployment)).encode() + b" " * 200_000
    r = client.post("/v1/forecast", content=body, headers=deployment.headers())
    assert r.status_code == 413
    assert r.json()["error"] == "body_too_large"


def test_oversize_chunked_body_is_413(client: TestClient, deployment: Deployment) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b" " * 10_000

    r = client.post("/v1/forecast", content=chunks(), headers=deployment.headers())
    assert r.status_code == 413


def test_no_champion_is_503(deployment: Deployment) -> None:
    for p in deployment.models_dir.iterdir():
        p.unlink()  # weights gone: load_champion cannot verify any version
    with TestClient(create_app(deployment.config())) as c:
        r = c.post("/v1/forecast", json=_body(deployment), headers=deployment.headers())
        assert r.status_code == 503
        assert r.headers["retry-after"]
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False


def test_torchscript_and_eager_serve_the_same_answer(deployment: Deployment) -> None:
    end = deployment.minute["session"].unique().sort()[-2]
    body = request_body(deployment.daily, deployment.minute, end)
    answers = {}
    for ts in (True, False):
        with TestClient(create_app(deployment.config(torchscript=ts))) as c:
            assert (c.app.state.service.model.scripted is not None) is ts  # type: ignore[attr-defined]
            r = c.post("/v1/forecast", json=body, headers=deployment.headers())
            assert r.status_code == 200
            answers[ts] = r.json()["p_up"]
    assert answers[True] == pytest.approx(answers[False], abs=1e-6)
