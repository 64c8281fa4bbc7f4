"""Schemathesis ``--checks all`` against a live ``quant serve`` on loopback: zero failures.

The demo deployment (SYNTHETIC market, a small trained champion) is served by the real command
in a subprocess; schemathesis generates requests from the served /openapi.json with a small,
seeded example budget.  ``tests/api/schemathesis.toml`` says why 422 is an accepted answer to
schema-valid bodies of POST /v1/forecast only (rules JSON Schema cannot state).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quant.api.keys import KeyStore, keys_path
from tests.support.demo import Demo

CONFIG = Path(__file__).with_name("schemathesis.toml")
BUDGET = 25  # examples per operation and phase: small, seeded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(demo_template: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    root = tmp_path_factory.mktemp("st") / "deploy"
    shutil.copytree(demo_template.store.parent, root)
    store = root / demo_template.store.name
    ks = KeyStore(keys_path(store))
    key = ks.create(["forecast", "signals:read"], "schemathesis")[0]
    ks.close()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANT")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from quant.cli import main; main()",
            "--db",
            str(store),
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.3)
        else:
            pytest.fail("quant serve did not become ready")
        yield base, key
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow
def test_schemathesis_checks_all_find_no_failure(served: tuple[str, str], tmp_path: Path) -> None:
    base, key = served
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    res = subprocess.run(
        [
            exe,
            "--no-color",
            "--config-file",
            str(CONFIG),
            "run",
            f"{base}/openapi.json",
            "--checks",
            "all",
            "-H",
            f"Authorization: Bearer {key}",
            "--max-examples",
            str(BUDGET),
            "--seed",
            "1",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis keeps a cache folder in its working directory
    )
    out = res.stdout + res.stderr
    summary = [ln for ln in out.splitlines() if "generated" in ln or ln.startswith("=")]
    print("\n".join(summary[-3:]))  # quoted in the closing note (pytest -s shows it)
    assert res.returncode == 0, out[-4000:]
    assert " passed" in out and "failure" not in out.split("SUMMARY")[-1], summary
