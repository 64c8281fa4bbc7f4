"""Ray executor: same numbers as local at the same seeds, dead workers retried, failures named."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.config import ForecastConfig
from models.executor import LocalExecutor, TaskError
from models.factory import build, model_config
from models.features import Windows, build_windows
from models.normalise import apply_norm, fit_norm
from models.train import fit, predict
from tests.conftest import RAY_MISSING
from tests.models.conftest import Market, label_array, small_config

pytest.importorskip("ray", reason=RAY_MISSING)


@dataclass(frozen=True)
class Shared:
    windows: Windows
    labels: np.ndarray
    cfg: ForecastConfig


@dataclass(frozen=True)
class FitTask:
    model: str
    seed: int


def fit_one(shared: Shared, task: FitTask) -> tuple[np.ndarray, int]:
    """One seeded fit of a tiny model; P(up) on the training windows and the epochs run."""
    c = shared.cfg
    m = build(model_config(task.model, c.features, c.model), seed=task.seed)
    r = fit(m, shared.windows, shared.labels, c.train.model_copy(update={"seed": task.seed}))
    return predict(m, shared.windows)[0], r.epochs


def die_once(_: Any, marker: str) -> str:
    """Kill the worker process on the first attempt (no marker yet); succeed on the retry."""
    p = Path(marker)
    if not p.exists():
        p.write_text(str(os.getpid()))
        os._exit(1)
    return f"retried after worker {p.read_text()} died"


def raise_for_seed(_: Any, task: FitTask) -> int:
    if task.seed == 7:
        raise ValueError(f"diverged at seed {task.seed}")
    return task.seed


@pytest.fixture(scope="module")
def shared(market: Market) -> Shared:
    cfg = small_config()
    w = build_windows(market.daily, market.intraday, cfg.features)
    w = w.take(np.nonzero(np.isin(w.sessions, market.labels.get_column("session").to_numpy()))[0])
    return Shared(apply_norm(w, fit_norm(w)), label_array(market.labels, w.sessions), cfg)


def test_ray_fits_equal_local_fits(ray_executor: Any, shared: Shared) -> None:
    tasks = [FitTask("fused", 1), FitTask("lstm", 2), FitTask("fused", 3)]
    local = LocalExecutor().map(fit_one, tasks, shared=shared)
    remote = ray_executor.map(fit_one, tasks, shared=shared)
    assert len(remote) == len(tasks)
    for (p_local, e_local), (p_ray, e_ray) in zip(local, remote, strict=True):
        np.testing.assert_array_equal(p_ray, p_local)
        assert e_ray == e_local
    assert not np.array_equal(local[0][0], local[2][0]), "different seeds, different fits"


def test_worker_that_dies_is_retried(ray_executor: Any, tmp_path: Path) -> None:
    marker = tmp_path / "attempt-1"
    [msg] = ray_executor.map(die_once, [str(marker)])
    assert marker.exists() and msg.startswith("retried after worker")


def test_raising_task_fails_the_call_naming_it(ray_executor: Any) -> None:
    tasks = [FitTask("fused", 5), FitTask("fused", 7), FitTask("fused", 9)]
    with pytest.raises(TaskError, match=r"FitTask\(model='fused', seed=7\).*diverged at seed 7"):
        ray_executor.map(raise_for_seed, tasks)
    assert ray_executor.map(raise_for_seed, [FitTask("lstm", 1)]) == [1]  # executor still usable
