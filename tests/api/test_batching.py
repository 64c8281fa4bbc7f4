"""Dynamic batching: concurrent requests are answered correctly in fewer forward passes."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import polars as pl

from quant.api.app import create_app
from quant.api.batcher import Batcher, QueueFullError
from tests.api.conftest import Deployment, run, running
from tests.support.demo import request_body


def test_batcher_merges_concurrent_submits() -> None:
    sizes: list[int] = []

    def runner(model: str, xs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        sizes.append(len(xs[0]))
        return xs[0][:, 0] / 100.0, np.zeros(len(xs[0]))

    async def main() -> list[tuple[float, float]]:
        b: Batcher[str] = Batcher(runner, max_batch=16, max_wait_s=0.05, queue_size=100)
        b.start()
        with b.admission():  # as if more requests were on their way
            futs = [b.enqueue("m", (np.array([float(i)]),)) for i in range(40)]
        out = await asyncio.gather(*futs)
        await b.stop()
        return out

    out = run(main)
    assert [p for p, _ in out] == [i / 100.0 for i in range(40)]
    assert sum(sizes) == 40
    assert max(sizes) <= 16
    assert len(sizes) == 3  # 16 + 16 + 8


def test_batcher_groups_by_model_and_refuses_when_full() -> None:
    seen: list[tuple[str, int]] = []

    def runner(model: str, xs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        seen.append((model, len(xs[0])))
        return np.full(len(xs[0]), 0.5 if model == "a" else 0.25), np.zeros(len(xs[0]))

    async def main() -> tuple[list[tuple[float, float]], int]:
        b: Batcher[str] = Batcher(runner, max_batch=64, max_wait_s=0.01, queue_size=6)
        b.start()
        futs, refused = [], 0
        for i in range(10):
            try:
                futs.append(b.enqueue("a" if i % 2 else "b", (np.zeros(1),)))
            except QueueFullError:
                refused += 1
        out = await asyncio.gather(*futs)
        await b.stop()
        return out, refused

    out, refused = run(main)
    assert refused == 4
    assert sorted(p for p, _ in out) == [0.25, 0.25, 0.25, 0.5, 0.5, 0.5]
    assert sorted(seen) == [("a", 3), ("b", 3)]


def _bodies(dep: Deployment, n: int) -> list[dict[str, Any]]:
    ends = dep.daily["session"].to_list()[-n:]
    return [request_body(dep.daily, None, e) for e in ends]


def test_concurrent_http_requests_share_forward_passes(deployment: Deployment) -> None:
    bodies = _bodies(deployment, 48)

    async def answers(**api: Any) -> tuple[list[dict[str, Any]], int]:
        app = create_app(deployment.config(**api))
        async with running(app) as client:
            rs = await asyncio.gather(
                *(client.post("/v1/forecast", json=b, headers=deployment.headers()) for b in bodies)
            )
            assert all(r.status_code == 200 for r in rs), [
                r.text for r in rs if r.status_code != 200
            ]
            return [r.json() for r in rs], app.state.batcher.forward_passes

    batched, passes = run(lambda: answers(max_batch=64, max_wait_ms=20))
    inline, inline_passes = run(lambda: answers(max_batch=64, max_wait_ms=20, inline_forward=True))
    single, single_passes = run(lambda: answers(max_batch=1))
    assert passes < len(bodies) / 3
    assert inline_passes < len(bodies) / 3
    assert single_passes == len(bodies)
    for b, i, s, body in zip(batched, inline, single, bodies, strict=True):
        assert b["decision_session"] == s["decision_session"] == body["daily"][-1]["date"]
        assert abs(b["p_up"] - s["p_up"]) < 1e-5
        assert abs(i["p_up"] - s["p_up"]) < 1e-5


def test_full_queue_answers_503_with_retry_after(deployment: Deployment) -> None:
    bodies = _bodies(deployment, 30)

    async def main() -> list[Any]:
        app = create_app(deployment.config(queue_size=1, max_batch=1, max_wait_ms=0))
        async with running(app) as client:
            return await asyncio.gather(
                *(client.post("/v1/forecast", json=b, headers=deployment.headers()) for b in bodies)
            )

    rs = run(main)
    codes = pl.Series([r.status_code for r in rs])
    assert set(codes.to_list()) <= {200, 503}
    refused = [r for r in rs if r.status_code == 503]
    assert refused, "a queue of one must refuse some of 30 simultaneous requests"
    assert all(r.headers["retry-after"] == "1" for r in refused)
    assert all("queue full" in r.json()["message"] for r in refused)
