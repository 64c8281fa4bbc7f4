"""``quant keys``, ``quant predict`` and ``quant serve`` as subprocesses on a loopback port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from feeds.snapshot import open_snapshot
from quant.cli import cli
from quant.signals import latest_signal
from tests.api.conftest import Deployment
from tests.support.demo import request_body

ROOT = Path(__file__).resolve().parents[2]


def test_keys_create_list_revoke(deployment: Deployment) -> None:
    db = ["--db", str(deployment.store)]
    runner = CliRunner()
    out = runner.invoke(cli, [*db, "keys", "create", "--scope", "forecast", "--name", "desk"])
    assert out.exit_code == 0, out.output
    key = out.output.strip().splitlines()[-1]
    assert key.startswith("qk_") and " " not in key
    listed = runner.invoke(cli, [*db, "keys", "list", "--json"])
    doc = {k["name"]: k for k in json.loads(listed.output)}
    assert doc["desk"]["scopes"] == ["forecast"] and doc["desk"]["last4"] == key[-4:]
    assert key not in listed.output
    rev = runner.invoke(cli, [*db, "keys", "revoke", doc["desk"]["key_id"]])
    assert rev.exit_code == 0 and "revoked" in rev.output
    assert runner.invoke(cli, [*db, "keys", "revoke", "nope"]).exit_code != 0
    bad = runner.invoke(cli, [*db, "keys", "create", "--scope", "admin"])
    assert bad.exit_code != 0


def test_predict_publishes_a_new_signal_and_snapshot(deployment: Deployment) -> None:
    con = open_snapshot(deployment.store)
    before = latest_signal(con, "000300.SH")
    con.close()
    out = CliRunner().invoke(cli, ["--db", str(deployment.store), "predict", "--json"])
    assert out.exit_code == 0, out.output
    sig = json.loads(out.output)
    assert sig["model_version"] == deployment.champion
    assert sig["decision_session"] == deployment.daily["session"][-1].isoformat()
    con = open_snapshot(deployment.store)
    after = latest_signal(con, "000300.SH")
    con.close()
    assert before is not None and after is not None
    assert after.session > before.session and after.version == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_quant_serve_answers_on_loopback(deployment: Deployment) -> None:
    port = _free_port()
    create = subprocess.run(
        [sys.executable, "-c", "from quant.cli import main; main()", "--db", str(deployment.store),
         "keys", "create", "--scope", "forecast", "--scope", "signals:read"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    key = create.stdout.strip().splitlines()[-1]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from quant.cli import main; main()", "--db", str(deployment.store),
         "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {key}"}
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "quant serve did not become ready"
            time.sleep(0.3)
        latest = httpx.get(f"{base}/v1/signals/000300.SH/latest", headers=h, timeout=10)
        assert latest.status_code == 200 and latest.json()["model_version"] == deployment.champion
        body = request_body(deployment.daily, None, deployment.daily["session"][-1])
        fc = httpx.post(f"{base}/v1/forecast", json=body, headers=h, timeout=10)
        assert fc.status_code == 200, fc.text
        assert {"p_up", "direction", "model_version"} <= set(fc.json())
        assert httpx.get(f"{base}/v1/models", timeout=10).status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert key.split("_", 2)[2] not in err
