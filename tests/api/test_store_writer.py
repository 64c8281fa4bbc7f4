"""The API reads published snapshots while another process holds the store and keeps writing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from feeds.store import StoreError, open_store
from quant.api.app import create_app
from tests.api.conftest import Deployment

WRITER = """
import sys, time
from datetime import UTC, datetime
from feeds.calendar import next_trading_day, session_close
from feeds.schema import InstrumentKind
from feeds.snapshot import publish_snapshot
from feeds.store import open_store
from quant.signals import latest_signal, publish_signal

store, seconds = sys.argv[1], float(sys.argv[2])
con = open_store(store)  # holds DuckDB's write lock for the whole run
print("writing", flush=True)
stop = time.monotonic() + seconds
n = 0
while time.monotonic() < stop:
    last = latest_signal(con, "000300.SH")
    t = last.session  # the next signal is decided at the close of the last one's session
    publish_signal(con, symbol="000300.SH", session=next_trading_day(t), decision_session=t,
                   p_up=0.25 + (n % 50) / 100, model_version=last.model_version,
                   last_bar_ts=session_close(InstrumentKind.INDEX, t).astimezone(UTC))
    publish_signal(con, symbol="000300.SH", session=next_trading_day(t), decision_session=t,
                   p_up=0.6, model_version=last.model_version,
                   last_bar_ts=session_close(InstrumentKind.INDEX, t).astimezone(UTC))  # a re-run
    publish_snapshot(con, store)
    n += 1
    time.sleep(0.1)
con.close()
print("published", n, flush=True)
"""


@pytest.mark.slow
def test_api_serves_while_a_writer_holds_the_store(deployment: Deployment) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(deployment.store), "4"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        with pytest.raises(StoreError):  # the main store is locked: the API must not need it
            open_store(deployment.store, read_only=True)
        sessions: list[str] = []
        statuses: list[int] = []
        with TestClient(create_app(deployment.config(reload_poll_s=0.05))) as c:
            stop = time.monotonic() + 3.5
            while time.monotonic() < stop:
                r = c.get("/v1/signals/000300.SH/latest", headers=deployment.headers())
                statuses.append(r.status_code)
                if r.status_code == 200:
                    sig = r.json()
                    sessions.append(sig["session"])
                    assert sig["version"] == 2 or sig["session"] <= "2024-06-28"
                rng = c.get(
                    "/v1/signals/000300.SH",
                    params={"start": "2024-06-01"},
                    headers=deployment.headers(),
                )
                statuses.append(rng.status_code)
                assert c.get("/readyz").status_code == 200
                time.sleep(0.02)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert set(statuses) == {200}, statuses
    assert len(set(sessions)) >= 3, "the API should have seen several newly published sessions"
    assert sessions == sorted(sessions)
    assert int(out.split()[-1]) >= 5
