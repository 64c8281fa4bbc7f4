"""``quant serve --workers 2``: a worker killed under load is replaced; the other loses nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from tests.api.conftest import Deployment
from tests.support.demo import request_body

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workers(proc: subprocess.Popen[str]) -> list[int]:
    """Live worker processes of the supervisor (a killed one is a zombie until reaped)."""
    pids = []
    for p in psutil.Process(proc.pid).children():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and any("spawn_main" in a for a in p.cmdline()):
                pids.append(p.pid)
        except psutil.Error:  # gone, or a zombie, between listing and asking
            continue
    return pids


def _connections(pid: int, port: int) -> int:
    """Established client connections a worker holds on ``port``."""
    conns = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)


def _serving_pids(base: str, key: str) -> set[int]:
    """Workers whose model gauge is in the merged /metrics (one ``pid`` series each)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {int(p) for p in re.findall(r'^quant_api_model_info\{pid="(\d+)"', text, re.M)}


@contextmanager
def _serve(deployment: Deployment, port: int) -> Iterator[subprocess.Popen[str]]:
    cmd = [sys.executable, "-c", "from quant.cli import main; main()", "--db",
           str(deployment.store), "serve", "--port", str(port), "--workers", "2"]  # fmt: skip
    env = {**os.environ, "QUANT__API__RELOAD_POLL_S": "0.2"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _until(what: str, ok: object, proc: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if callable(ok) and ok():
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.mark.slow
def test_a_killed_worker_is_replaced_without_failing_the_others(deployment: Deployment) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    key = deployment.keys["both"]
    h = {"Authorization": f"Bearer {key}"}
    body = request_body(deployment.daily, None, deployment.daily["session"][-1])
    with _serve(deployment, port) as proc:
        _until("two workers", lambda: len(_workers(proc)) == 2, proc)
        first = set(_workers(proc))
        _until("both workers serving", lambda: _serving_pids(base, key) == first, proc)

        stop = threading.Event()
        outcomes: list[list[int | str]] = [[] for _ in range(CLIENTS)]

        def client(i: int) -> None:
            with httpx.Client(base_url=base, headers=h, timeout=30) as c:  # one keep-alive conn
                while not stop.is_set():
                    try:
                        if i % 2:
                            r = c.post("/v1/forecast", json=body)
                        else:
                            r = c.get("/v1/signals/000300.SH/latest")
                        outcomes[i].append(r.status_code)
                    except httpx.TransportError as exc:  # the connection died with its worker
                        outcomes[i].append(type(exc).__name__)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        # under load, wait for work rather than for time: every client answered before the kill
        _until("every client answered", lambda: all(outcomes), proc)
        # the worker holding fewer connections dies: the other holds at least half the clients
        victim = min(sorted(first), key=lambda pid: _connections(pid, port))
        os.kill(victim, signal.SIGKILL)
        at_kill = [len(o) for o in outcomes]
        _until("a replacement worker", lambda: len(set(_workers(proc)) - first) == 1, proc)
        _until(
            "every client past the kill",
            lambda: all(len(o) > k for o, k in zip(outcomes, at_kill, strict=True)),
            proc,
        )
        stop.set()
        for t in threads:
            t.join(timeout=60)
        replacement = set(_workers(proc)) - first
        _until(
            "the replacement serving",
            lambda: _serving_pids(base, key) == (first - {victim}) | replacement,
            proc,
        )
        after = httpx.get(f"{base}/v1/signals/000300.SH/latest", headers=h, timeout=10)

    statuses = [s for o in outcomes for s in o if isinstance(s, int)]
    failed = [[s for s in o if not isinstance(s, int)] for o in outcomes]
    assert set(statuses) == {200}, "every answered request succeeded"
    # only the request in flight on a dead connection fails, once per client at most
    assert all(len(f) <= 1 for f in failed), failed
    untouched = [i for i, f in enumerate(failed) if not f]
    assert untouched, "some clients were on the surviving worker"
    for i in untouched:  # they kept being answered across the kill
        assert len(outcomes[i]) > at_kill[i] > 0
    assert after.status_code == 200
