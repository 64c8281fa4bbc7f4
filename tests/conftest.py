"""Suite-wide fixtures: the library calendar around every test; one light local Ray cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from feeds.calendar import configure

RAY_MISSING = (
    "the optional ray extra is not installed (pip install -c constraints.txt -e '.[ray]'; "
    "make setup installs it)"
)


@pytest.fixture(autouse=True)
def _library_calendar() -> Iterator[None]:
    """Every test starts and ends on the library's XSHG calendar (a test may configure another)."""
    configure()
    yield
    configure()


@pytest.fixture(scope="session")
def ray_executor() -> Iterator[Any]:
    """A ``RayExecutor`` on a 2-CPU local cluster, started once per test session."""
    pytest.importorskip("ray", reason=RAY_MISSING)
    from models.executor_ray import RayExecutor

    ex = RayExecutor(workers=2, object_store_memory=128 * 2**20)
    yield ex
    ex.close()
