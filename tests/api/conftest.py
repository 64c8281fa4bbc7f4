"""Fixtures of the API tests: one small demo deployment (SYNTHETIC market), copied per test."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import torch
from fastapi import FastAPI

from models.config import FeatureSpec, ForecastConfig, ModelSettings
from quant.api.keys import KeyStore, keys_path
from quant.config import QuantConfig
from tests.support.demo import Demo, build_demo

SMALL = ForecastConfig(
    features=FeatureSpec(daily_window=10, zscore_window=10, vol_window=10),
    model=ModelSettings(d_model=8, short_heads=2, lstm_hidden=8),
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The CI box has 2 shared cores: torch runs on one thread in every test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Built once: ~250 synthetic sessions, a small trained champion, signals, snapshot."""
    return build_demo(
        tmp_path_factory.mktemp("demo"), cfg=SMALL, start=date(2023, 6, 1), end=date(2024, 6, 28)
    )


@dataclass(frozen=True)
class Deployment:
    root: Path
    store: Path
    models_dir: Path
    daily: pl.DataFrame
    minute: pl.DataFrame
    champion: str
    keys: dict[str, str]  # "both", "forecast", "read", "revoked" -> key

    def config(self, **api: Any) -> QuantConfig:
        return QuantConfig.model_validate(
            {
                "store": {"path": str(self.store)},
                "api": {"reload_poll_s": 0.1, "audit_flush_s": 0.1, **api},
            }
        )

    def headers(self, which: str = "both") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[which]}"}


@pytest.fixture
def deployment(demo_template: Demo, tmp_path: Path) -> Deployment:
    """A private copy of the demo deployment (tests may write to it) with four keys."""
    root = tmp_path / "deploy"
    shutil.copytree(demo_template.store.parent, root)
    store = root / demo_template.store.name
    ks = KeyStore(keys_path(store))
    keys = {
        "both": ks.create(["forecast", "signals:read"], "both")[0],
        "forecast": ks.create(["forecast"], "forecast-only")[0],
        "read": ks.create(["signals:read"], "read-only")[0],
    }
    revoked, info = ks.create(["forecast", "signals:read"], "revoked")
    ks.revoke(info.key_id)
    keys["revoked"] = revoked
    ks.close()
    return Deployment(
        root,
        store,
        root / "models",
        demo_template.daily,
        demo_template.minute,
        demo_template.champion,
        keys,
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (poller, batcher, audit) and an in-process async client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())
