"""Hot reload: the champion changes under load; no request fails, each names its model."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import polars as pl
import pytest

from feeds.resample import resample_intraday
from models.forecaster import Forecaster
from quant.api.app import create_app
from tests.api.conftest import SMALL, Deployment, run, running
from tests.support.demo import register_champion, request_body, train_forecaster


@pytest.mark.slow
def test_champion_switch_under_load_fails_nothing(deployment: Deployment) -> None:
    intraday = resample_intraday(deployment.minute, SMALL.features.intraday_minutes)
    challenger = train_forecaster(deployment.daily, intraday, SMALL, seed=99)
    ends = deployment.daily["session"].to_list()[-20:]
    bodies = [request_body(deployment.daily, None, e) for e in ends]
    answers: list[tuple[int, dict[str, Any], int]] = []
    new_version: list[str] = []

    async def client_loop(client: Any, k: int, stop: asyncio.Event) -> None:
        i = k
        while not stop.is_set():
            body = bodies[i % len(bodies)]
            r = await client.post("/v1/forecast", json=body, headers=deployment.headers())
            answers.append((r.status_code, r.json(), i % len(bodies)))
            i += 1

    async def main() -> None:
        app = create_app(deployment.config(reload_poll_s=0.05, max_wait_ms=2))
        async with running(app) as client:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(client_loop(client, k, stop)) for k in range(8)]
            await asyncio.sleep(0.5)
            new_version.append(
                await asyncio.to_thread(
                    register_champion, deployment.store, deployment.models_dir, challenger
                )
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(a[1].get("model_version") == new_version[0] for a in answers[-8:]):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*tasks)
            assert app.state.service.reloads == 2, app.state.service.model_error

    run(main)
    assert answers and all(code == 200 for code, _, _ in answers), {a[0] for a in answers}
    versions = [doc["model_version"] for _, doc, _ in answers]
    assert set(versions) == {deployment.champion, new_version[0]}
    first_new = versions.index(new_version[0])
    assert deployment.champion in versions[:first_new]
    # Every answer is the named model's own forecast for that body.
    from feeds.snapshot import open_snapshot
    from quant import registry

    con = open_snapshot(deployment.store)
    models: dict[str, Forecaster] = {
        v.version_id: registry.load_verified(v, deployment.models_dir)
        for v in registry.list_versions(con)
    }
    con.close()
    expected = {
        (ver, j): models[ver]
        .predict(deployment.daily.filter(pl.col("session") <= ends[j]).tail(45))
        .p_up
        for ver in models
        for j in range(len(ends))
    }
    for _, doc, j in answers:
        assert doc["p_up"] == pytest.approx(expected[(doc["model_version"], j)], abs=1e-5)


def test_a_poll_reads_the_champion_once_per_published_snapshot(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A published snapshot never changes, so polls of the same one ask the registry nothing
    (each poll used to run the champion queries: ~7% of a worker's forecast throughput); a
    newly published champion is still served at the next poll."""
    from quant.api import champion
    from quant.api.serving import ServiceState
    from quant.config import models_dir

    cfg = deployment.config()
    calls: list[int] = []
    real = champion.champion
    monkeypatch.setattr(champion, "champion", lambda con: calls.append(1) or real(con))
    state = ServiceState(deployment.store, models_dir(cfg), frozenset({"000300.SH"}))
    assert state.refresh() and state.model is not None
    assert state.model.version == deployment.champion
    n = len(calls)  # the poll's look-up, and the load's own
    for _ in range(5):
        assert not state.refresh()
    assert len(calls) == n
    intraday = resample_intraday(deployment.minute, SMALL.features.intraday_minutes)
    challenger = train_forecaster(deployment.daily, intraday, SMALL, seed=99)
    new = register_champion(deployment.store, deployment.models_dir, challenger)
    assert state.refresh() and state.model.version == new
    n = len(calls)
    assert not state.refresh() and not state.refresh() and len(calls) == n
