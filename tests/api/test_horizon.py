"""The API's next session stops at the calendar horizon; /readyz and /metrics warn before it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from fastapi.testclient import TestClient

from feeds.calendar import trading_days
from quant.api import bars
from quant.api.app import create_app
from tests.api.conftest import Deployment
from tests.feeds.test_calendar_horizon import HOLIDAYS_2027
from tests.support.demo import request_body

LAST = date(2026, 12, 31)


def _bars_ending(dep: Deployment, end: date) -> pl.DataFrame:
    """The demo's newest daily bars moved onto the sessions that end at ``end``."""
    d = dep.daily.tail(45)
    days = trading_days(date(2026, 1, 1), end)[-d.height :]
    return d.with_columns(pl.Series("session", days, dtype=pl.Date))


class _FrozenClock:
    """``datetime`` for ``quant.api.bars`` with ``now()`` fixed (everything else unchanged)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self, tz: object = None) -> datetime:
        return self._at

    def __getattr__(self, name: str) -> object:
        return getattr(datetime, name)


def test_a_forecast_on_the_horizon_says_the_next_session_is_unknown(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the request is made after the close of 2026-12-31 (the API refuses unclosed sessions)
    after_close = datetime(2026, 12, 31, 8, 0, tzinfo=UTC)
    monkeypatch.setattr(bars, "datetime", _FrozenClock(after_close))
    body = request_body(_bars_ending(deployment, LAST), None, LAST)
    with TestClient(create_app(deployment.config())) as c:
        r = c.post("/v1/forecast", json=body, headers=deployment.headers())
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["decision_session"] == "2026-12-31" and got["session"] is None
    assert "next session unknown" in got["warnings"][0] and "2026-12-31" in got["warnings"][0]
    cfg = deployment.config().model_validate(
        {
            **deployment.config().model_dump(mode="json"),
            "calendar": {
                "horizon": "2027-12-31",
                "extra_holidays": [str(d) for d in HOLIDAYS_2027],
            },
        }
    )
    with TestClient(create_app(cfg)) as c:
        r = c.post("/v1/forecast", json=body, headers=deployment.headers())
    assert r.json()["session"] == "2027-01-04" and r.json()["warnings"] == []


def test_readyz_and_metrics_warn_from_warn_days_before_the_horizon(
    deployment: Deployment,
) -> None:
    base = deployment.config().model_dump(mode="json")
    warn = deployment.config().model_validate({**base, "calendar": {"warn_days": 100_000}})
    with TestClient(create_app(warn)) as c:
        ready = c.get("/readyz").json()
        text = c.get("/metrics").text
    assert ready["ready"] is True and ready["calendar_horizon"] == "2026-12-31"
    assert any("calendar horizon 2026-12-31" in w for w in ready["warnings"])
    assert "quant_calendar_horizon_warning 1.0" in text
    assert "quant_calendar_horizon_days" in text
    far = {"horizon": "2030-12-31", "warn_days": 0}  # a horizon years away: no warning yet
    quiet = deployment.config().model_validate({**base, "calendar": far})
    with TestClient(create_app(quiet)) as c:
        assert c.get("/readyz").json()["warnings"] == []
        assert "quant_calendar_horizon_warning 0.0" in c.get("/metrics").text
