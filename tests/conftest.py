"""Fixtures shared by every test package: one light local Ray cluster per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

RAY_MISSING = (
    "the optional ray extra is not installed (pip install -c constraints.txt -e '.[ray]'; "
    "make setup installs it)"
)


@pytest.fixture(scope="session")
def ray_executor() -> Iterator[Any]:
    """A ``RayExecutor`` on a 2-CPU local cluster, started once per test session."""
    pytest.importorskip("ray", reason=RAY_MISSING)
    from models.executor_ray import RayExecutor

    ex = RayExecutor(workers=2, object_store_memory=128 * 2**20)
    yield ex
    ex.close()
