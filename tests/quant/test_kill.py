"""SIGKILL during ingest, fine-tune and promotion leaves the registry and the store consistent.

A child process runs the pipeline with one function wrapped to SIGKILL the process at the chosen
point (mid-training, or inside the open promotion/ingest transaction).  Afterwards the champion
loads and its hash verifies, the day is not marked done, and the next run completes it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from feeds.store import open_store
from quant import registry
from quant.config import QuantConfig
from quant.pipeline import get_run, models_dir, run_daily
from tests.quant.conftest import LAST

CHILD = """
import os, signal, sys, threading
from datetime import date

from quant.config import QuantConfig

cfg = QuantConfig.model_validate_json(open(sys.argv[1]).read())
mode, day = sys.argv[2], date.fromisoformat(sys.argv[3])


def die():
    os.kill(os.getpid(), signal.SIGKILL)


if mode == "finetune":  # killed 0.3 s into training
    import quant.finetune as target

    real_fit = target.fit

    def fit(model, train, labels, settings, **k):  # would train for 30 s: dies at 0.3 s
        endless = settings.model_copy(update={"patience": 10**6, "max_epochs": 10**6})
        threading.Timer(0.3, die).start()
        return real_fit(model, train, labels, endless, **{**k, "budget_s": 30.0, "max_steps": None})

    target.fit = fit
elif mode == "promotion":  # killed after the champion row is written, before the commit
    import quant.registry as target

    real_set = target.set_champion

    def set_champion(*a, **k):
        real_set(*a, **k)
        die()

    target.set_champion = set_champion
elif mode == "ingest":  # killed after the bars are written, before the commit
    import feeds.ingest as target

    real_write = target.write_bars

    def write_bars(*a, **k):
        real_write(*a, **k)
        die()

    target.write_bars = write_bars

from feeds.store import open_store
from quant.pipeline import run_daily

con = open_store(cfg.store.path)
run_daily(con, cfg, day, store_path=cfg.store.path)
print("survived")
"""


def _killed_run(cfg: QuantConfig, tmp_path: Path, mode: str, day: date) -> None:
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(cfg.model_dump_json())
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, str(script), str(cfg_file), mode, day.isoformat()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr


def _assert_consistent(cfg: QuantConfig, day: date, champion_id: str | None) -> None:
    con = open_store(cfg.store.path)
    try:
        champ = registry.champion(con)
        assert (champ.version_id if champ else None) == champion_id
        if champ is not None:
            v, _ = registry.load_champion(con, models_dir(cfg))  # hash verified
            assert v.version_id == champion_id
        run = get_run(con, cfg.data.symbol, day)
        assert run is not None and run["status"] != "done"
    finally:
        con.close()


def test_kill_during_finetune_and_during_promotion(
    make_env: Callable[..., QuantConfig], tmp_path: Path
) -> None:
    cfg = make_env(gate={"max_log_loss_increase": 10.0, "skip_unchanged": False})
    day = LAST
    con = open_store(cfg.store.path)
    assert run_daily(con, cfg, date(2022, 12, 29)).status == "done"
    first = registry.champion(con)
    n_versions = len(registry.list_versions(con))
    con.close()
    assert first is not None

    _killed_run(cfg, tmp_path, "finetune", day)
    _assert_consistent(cfg, day, first.version_id)
    con = open_store(cfg.store.path)
    assert len(registry.list_versions(con)) == n_versions  # no version without finished weights
    con.close()

    _killed_run(cfg, tmp_path, "promotion", day)
    _assert_consistent(cfg, day, first.version_id)  # the promotion was rolled back whole
    con = open_store(cfg.store.path)
    run = get_run(con, cfg.data.symbol, day)
    assert run is not None and run["steps"]["finetune"]["status"] == "done"
    assert "gate" not in run["steps"]
    assert (
        con.execute("SELECT count(*) FROM gate_decisions WHERE run_date = ?", [day]).fetchall()[0][
            0
        ]
        == 0
    )

    r = run_daily(con, cfg, day)
    assert r.status == "done", r.error
    champ = registry.champion(con)
    assert champ is not None and champ.version_id == r.steps["finetune"]["detail"]["challenger"]
    registry.load_verified(champ, models_dir(cfg))
    con.close()


def test_kill_during_ingest(make_env: Callable[..., QuantConfig], tmp_path: Path) -> None:
    cfg = make_env(empty=True)
    _killed_run(cfg, tmp_path, "ingest", LAST)
    _assert_consistent(cfg, LAST, None)
    con = open_store(cfg.store.path)
    assert con.execute("SELECT count(*) FROM bars_daily").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0] == 0
    r = run_daily(con, cfg, LAST)
    assert r.status == "done", r.error
    assert con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0] == 1
    con.close()
