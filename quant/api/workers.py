"""Several server processes on one port: ``quant serve --workers N``.

The supervisor (this process) binds the listening socket once and starts N worker processes
(``spawn``: each imports torch and loads the champion itself) that accept from it.  Each
worker is a whole API instance: its own batcher, model, snapshot view and reload poller, so a
hot reload happens in every worker.  Connections wait in the one shared accept queue, so a
worker that dies takes only the requests it was answering; the supervisor notices within
``POLL_S``, clears its live metrics (``mark_process_dead``) and starts a replacement.
``/metrics`` of any worker sums over all of them (see ``quant.api.metrics``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from quant.api.metrics import MULTIPROC_ENV
from quant.config import QuantConfig

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often the supervisor looks for dead workers
BACKLOG = 2048


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts from."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def uvicorn_options(access_log: bool) -> dict[str, Any]:
    """How ``quant serve`` runs uvicorn, with one worker or several: uvloop and httptools where
    installed, no ``server`` header (it names the software and costs a header per answer)."""
    return {
        "access_log": access_log,
        "log_level": "info",
        "loop": "auto",
        "http": "auto",
        "server_header": False,
    }


def run_worker(config_json: str, sock: socket.socket, access_log: bool) -> None:
    """One worker: the API of ``config_json`` under uvicorn on the inherited socket."""
    import uvicorn

    from quant.api.app import create_app

    cfg = QuantConfig.model_validate_json(config_json)
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), **uvicorn_options(access_log)))
    server.run(sockets=[sock])


class Supervisor:
    """Start ``n`` workers on ``sock`` and keep ``n`` alive until ``stop``."""

    def __init__(self, cfg: QuantConfig, n: int, sock: socket.socket, *, access_log: bool) -> None:
        self._args = (cfg.model_dump_json(), sock, access_log)
        self._ctx = multiprocessing.get_context("spawn")
        self.n = n
        self.procs: list[BaseProcess] = []
        self.replaced = 0
        self._stop = threading.Event()

    def _start(self) -> BaseProcess:
        p = self._ctx.Process(target=run_worker, args=self._args, name="quant-api-worker")
        p.start()
        log.info("worker %s started", p.pid)
        return p

    def stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> None:
        """Supervise until ``stop``; then stop every worker (SIGTERM: uvicorn drains)."""
        self.procs = [self._start() for _ in range(self.n)]
        from prometheus_client import multiprocess

        while not self._stop.wait(POLL_S):
            for i, p in enumerate(self.procs):
                if not p.is_alive():
                    log.warning("worker %s exited (code %s); starting another", p.pid, p.exitcode)
                    multiprocess.mark_process_dead(p.pid)
                    self.procs[i] = self._start()
                    self.replaced += 1
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.join(timeout=20)
            if p.is_alive():
                p.kill()
                p.join()


def serve_workers(cfg: QuantConfig, *, access_log: bool) -> None:
    """``quant serve`` with ``api.workers`` > 1: supervise the workers until SIGINT/SIGTERM."""
    api = cfg.api
    metrics_dir = tempfile.mkdtemp(prefix="quant-api-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by the workers, read at their import
    sock = bind(api.host, api.port)
    sup = Supervisor(cfg, api.workers, sock, access_log=access_log)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        sup.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sup.run()
    finally:
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
