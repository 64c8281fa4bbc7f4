"""API input rules: closed sessions only, the intraday instrument named, ISO dates in queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quant.api.app import create_app
from quant.api.bars import BarsError, check_daily
from quant.api.schemas import DailyBar
from tests.api.conftest import Deployment
from tests.support.demo import request_body


@pytest.fixture
def client(deployment: Deployment) -> Iterator[TestClient]:
    with TestClient(create_app(deployment.config())) as c:
        yield c


def _body(dep: Deployment, intraday: bool = False) -> dict[str, Any]:
    end = dep.minute["session"].unique().sort()[-1]
    return request_body(dep.daily, dep.minute if intraday else None, end)


def _bar(d: date) -> DailyBar:
    return DailyBar(date=d, open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0, amount=1.0)


def test_a_session_that_has_not_closed_is_refused() -> None:
    bars = [_bar(date(2024, 6, 27)), _bar(date(2024, 6, 28))]
    noon = datetime(2024, 6, 28, 4, 0, tzinfo=UTC)  # 12:00 Asia/Shanghai
    with pytest.raises(BarsError, match=r"daily\[1\] \(2024-06-28\): the session has not closed"):
        check_daily(bars, 2, now=noon)
    after = datetime(2024, 6, 28, 7, 0, tzinfo=UTC)  # 15:00 Asia/Shanghai: closed
    assert check_daily(bars, 2, now=after).sessions[-1] == date(2024, 6, 28)


def test_models_names_the_intraday_instrument_and_bar_length(
    client: TestClient, deployment: Deployment
) -> None:
    m = client.get("/v1/models", headers=deployment.headers()).json()
    assert m["intraday_symbol"] == "000300.SH"  # the demo trains on index minute bars
    assert m["intraday_minutes"] == 5
    assert m["uses_amount"] is True


@pytest.mark.parametrize("symbol", [None, "IF.CFE"])
def test_intraday_bars_must_name_the_models_instrument(
    client: TestClient, deployment: Deployment, symbol: str | None
) -> None:
    body = _body(deployment, intraday=True)
    if symbol is None:
        del body["intraday_symbol"]
    else:
        body["intraday_symbol"] = symbol
    r = client.post("/v1/forecast", json=body, headers=deployment.headers())
    assert r.status_code == 422, r.text
    assert "the model was trained on 000300.SH bars" in r.json()["message"]
    body["intraday_symbol"] = "000300.SH"
    assert client.post("/v1/forecast", json=body, headers=deployment.headers()).status_code == 200


def test_query_dates_are_iso_only_and_an_empty_interval_is_empty(
    client: TestClient, deployment: Deployment
) -> None:
    url = "/v1/signals/000300.SH"
    h = deployment.headers("read")
    assert client.get(url, params={"start": "0"}, headers=h).status_code == 422
    assert client.get(url, params={"start": "2024-02-30"}, headers=h).status_code == 422
    r = client.get(url, params={"start": "2024-06-28", "end": "2024-01-01"}, headers=h)
    assert r.status_code == 200 and r.json()["signals"] == []
    assert client.get(url, params={"start": "2024-01-01"}, headers=h).json()["signals"]


def test_served_schema_states_the_warmup_and_its_example_is_accepted(
    client: TestClient, deployment: Deployment
) -> None:
    doc = client.get("/openapi.json").json()
    req = doc["components"]["schemas"]["ForecastRequest"]
    warmup = client.get("/v1/models", headers=deployment.headers()).json()["feature_warmup"]
    assert req["properties"]["daily"]["minItems"] == warmup
    assert req["properties"]["daily"]["maxItems"] == 2000
    assert req["dependentRequired"] == {"intraday": ["intraday_symbol"]}
    params = {p["name"]: p for p in doc["paths"]["/v1/signals/{symbol}"]["get"]["parameters"]}
    assert '"format": "date"' in str(params["start"]).replace("'", '"')
    assert "pattern" in str(params["start"])
    (example,) = req["examples"]
    r = client.post("/v1/forecast", json=example, headers=deployment.headers())
    assert r.status_code == 200, r.text
