"""API load benchmark: /v1/forecast (batched vs unbatched), /latest and the HTTP floor.

``python -m benchmarks api [--seconds 5] [--clients 64] [--workers 2] [--generator both]
[--intraday] [--thread] [--dir DIR] [--json FILE]``

Builds the seeded demo deployment (SYNTHETIC market, small trained champion, published signals,
snapshot), then runs two ``quant serve --workers N`` on free loopback ports, both up for the
whole run: one with dynamic batching (``--max-batch 64``), one without (``--max-batch 1``).  Only
one is under load at a time.  The forecast cells run in the order batched, unbatched, unbatched,
batched (ABBA), so that a machine whose pace drifts over the half minute of the four cells
weighs alike on both modes; the batched / unbatched ratio is that of the pooled rates (answers
over seconds of both cells of a mode), and each pair's ratio is printed beside it.  Pooled p99
is the worse cell's.  Routes measured on the batched server in the same run: ``POST
/v1/forecast``, ``GET /v1/signals/{s}/latest`` and ``GET /healthz`` (the HTTP floor:
middleware, routing and a constant body; the other routes are reported as fractions of it).
Every forecast body is different (45 daily bars ending on a different session).

Load generators (closed loop, one keep-alive connection per client, no think time):
- ``wrk`` (C; ``make wrk`` installs the Debian package) with ``benchmarks/wrk/api.lua``, which
  cycles through the forecast bodies; 2 threads, so it leaves the server most of the CPU;
- the Python client below (asyncio, minimal HTTP/1.1), the fallback and a cross-check.
The JSON figures come from wrk when it is installed, else from the Python client.  Server and
load generators run under ``nice`` 10.  Average batch size comes from the server's own /metrics
(samples / forward passes, summed over the workers) per run.  ``cpu us`` is the CPU time of the
server processes (supervisor and workers, user + system) per answer in each cell: on a machine
shared with other work it moves far less than req/s and p99, so the batching gain is also
given as unbatched / batched CPU per answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.output import load_average, write_json

HOST = "127.0.0.1"
NICE = 10


@dataclass(frozen=True)
class Result:
    route: str
    mode: str
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    avg_batch: float | None
    forward_ms: float | None  # mean duration of one forward pass
    generator: str = "python"  # load generator: python (this module's client) or wrk
    server_cpu_us: float | None = None  # CPU time of the server processes per answer

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _request(method: str, path: str, key: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    body = await reader.readexactly(int(m.group(1))) if m else b""
    return status, body


async def _client(
    port: int,
    requests: list[bytes],
    stop_at: float,
    warm_until: float,
    lat: list[float],
    errors: list[int],
    offset: int,
    sent: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    i = offset
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            status, _ = await _exchange(reader, writer, requests[i % len(requests)])
            t1 = time.perf_counter()
            i += 1
            sent[0] += 1
            if t0 >= warm_until:
                lat.append(t1 - t0)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


async def _load(
    port: int, requests: list[bytes], clients: int, seconds: float
) -> tuple[list[float], list[int], float, int]:
    lat: list[float] = []
    errors: list[int] = []
    sent = [0]  # every answer, warm-up included
    start = time.perf_counter()
    warm_until = start + min(1.0, seconds / 3)
    stop_at = warm_until + seconds
    await asyncio.gather(
        *(
            _client(port, requests, stop_at, warm_until, lat, errors, k * 7, sent)
            for k in range(clients)
        )
    )
    return lat, errors, seconds, sent[0]


def _metrics(port: int) -> tuple[float, float, float]:
    """Samples, forward passes and forward seconds so far (from the server's /metrics)."""
    import httpx

    text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=10).text

    def get(name: str) -> float:
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    return (
        get("quant_api_batch_size_sum"),
        get("quant_api_batch_size_count"),
        get("quant_api_forward_seconds_sum"),
    )


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the server: the supervisor and its workers."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:  # gone between listing and asking
                continue
    except psutil.Error:
        return float("nan")
    return total


def _serving_workers(port: int) -> int:
    """Workers that have reported their model in the merged /metrics (one pid series each)."""
    import httpx

    text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=10).text
    pids = set(re.findall(r'^quant_api_model_info\{pid="(\d+)"', text, re.M))
    return len(pids) or int(bool(re.search(r"^quant_api_model_info\{", text, re.M)))


@contextmanager
def _server(
    store: Path, max_batch: int, max_wait_ms: float, inline: bool, workers: int
) -> Iterator[tuple[int, int]]:
    port = _free_port()
    cmd = [  # inherits this process's niceness (NICE): both sides compete on equal terms
        sys.executable,
        "-c",
        "from quant.cli import main; main()",
        "--db",
        str(store),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--max-batch",
        str(max_batch),
        "--max-wait-ms",
        str(max_wait_ms),
        "--workers",
        str(workers),
    ]
    env = {**os.environ, "QUANT__API__INLINE_FORWARD": "true" if inline else "false"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        import httpx

        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
            try:  # every worker ready (each answers /metrics with its model once it has one)
                if _serving_workers(port) >= workers:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("server not ready after 180 s")
            time.sleep(0.3)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run(
    port: int, pid: int, route: str, mode: str, reqs: list[bytes], clients: int, seconds: float
) -> Result:
    s0, c0, f0 = _metrics(port)
    cpu0 = _server_cpu(pid)
    lat, errors, dur, sent = asyncio.run(_load(port, reqs, clients, seconds))
    cpu1 = _server_cpu(pid)
    s1, c1, f1 = _metrics(port)
    a = np.array(lat) * 1e3
    return Result(
        route,
        mode,
        clients,
        len(lat),
        dur,
        float(np.percentile(a, 50)) if a.size else float("nan"),
        float(np.percentile(a, 99)) if a.size else float("nan"),
        len(errors),
        (s1 - s0) / (c1 - c0) if c1 > c0 else None,
        (f1 - f0) / (c1 - c0) * 1e3 if c1 > c0 else None,
        server_cpu_us=(cpu1 - cpu0) / max(1, sent) * 1e6,  # warm-up answers included
    )


WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "api.lua"


def _run_wrk(
    port: int,
    pid: int,
    route: str,
    mode: str,
    method: str,
    path: str,
    bodies: Path | None,
    key: str,
    clients: int,
    seconds: float,
) -> Result:
    """One cell driven by wrk: a 1 s warm-up run, then the measured run."""
    env = {
        **os.environ,
        "WRK_KEY": key,
        "WRK_METHOD": method,
        "WRK_PATH": path,
        "WRK_BODIES": str(bodies or ""),
    }
    threads = min(2, clients)

    def wrk(duration: float) -> dict[str, float]:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{clients}", f"-d{max(1, round(duration))}s",
             "--timeout", "10s", "-s", str(WRK_SCRIPT), f"http://{HOST}:{port}"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        doc: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        return doc

    wrk(1)
    s0, c0, f0 = _metrics(port)
    cpu0 = _server_cpu(pid)
    w = wrk(seconds)
    cpu1 = _server_cpu(pid)
    s1, c1, f1 = _metrics(port)
    errors = int(w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"])
    return Result(
        route,
        mode,
        clients,
        int(w["requests"]),
        w["seconds"],
        w["p50_ms"],
        w["p99_ms"],
        errors,
        (s1 - s0) / (c1 - c0) if c1 > c0 else None,
        (f1 - f0) / (c1 - c0) * 1e3 if c1 > c0 else None,
        "wrk",
        (cpu1 - cpu0) / max(1, int(w["requests"])) * 1e6,
    )


def table(results: list[Result]) -> str:
    rows = [
        f"{'route':<30} {'mode':<10} {'gen':<6} {'clients':>7} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'errors':>6} {'avg batch':>9} {'fwd ms':>7} {'cpu us':>7}"
    ]
    for r in results:
        ab = f"{r.avg_batch:.1f}" if r.avg_batch is not None else "-"
        fw = f"{r.forward_ms:.2f}" if r.forward_ms is not None else "-"
        cpu = f"{r.server_cpu_us:.0f}" if r.server_cpu_us is not None else "-"
        rows.append(
            f"{r.route:<30} {r.mode:<10} {r.generator:<6} {r.clients:>7} {r.rps:>8.0f} "
            f"{r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>6} {ab:>9} {fw:>7} {cpu:>7}"
        )
    by = {(r.route, r.mode, r.clients, r.generator): r for r in results}
    rows.append("")
    for gen in sorted({r.generator for r in results}):
        for c in sorted({r.clients for r in results}):
            b, u = by.get((FORECAST, "batched", c, gen)), by.get((FORECAST, "unbatched", c, gen))
            floor, lat = by.get((FLOOR, "batched", c, gen)), by.get((LATEST, "batched", c, gen))
            if b and u:
                rows.append(
                    f"{gen}, {c} clients: forecast batched / unbatched {b.rps / u.rps:.2f}x"
                    + (
                        f" (server CPU per answer: unbatched / batched "
                        f"{u.server_cpu_us / b.server_cpu_us:.2f}x)"
                        if b.server_cpu_us and u.server_cpu_us
                        else ""
                    )
                )
            if floor and b and lat:
                rows.append(
                    f"{gen}, {c} clients: of the HTTP floor ({floor.rps:.0f} req/s): "
                    f"/latest {lat.rps / floor.rps:.0%}, /v1/forecast {b.rps / floor.rps:.0%}"
                )
    return "\n".join(rows)


FORECAST, LATEST, FLOOR = "POST /v1/forecast", "GET /v1/signals/{s}/latest", "GET /healthz"
# The forecast cells, in order, for each load generator and client count: ABBA, so a pace that
# drifts steadily over the ~30 s of the four cells weighs the same on both modes.
PAIRED = ("batched", "unbatched", "unbatched", "batched")


def _weighted(rs: list[Result], get: Callable[[Result], float | None]) -> float | None:
    """The mean of ``get`` over ``rs`` weighted by answers; None if any cell lacks it."""
    n = sum(r.requests for r in rs)
    vals = [get(r) for r in rs]
    if n == 0 or any(v is None for v in vals):
        return None
    return sum(float(v) * r.requests for v, r in zip(vals, rs, strict=True) if v is not None) / n


def pool(results: list[Result]) -> list[Result]:
    """One result per (route, mode, clients, generator): the cells of the same kind together.

    Requests and seconds are summed (so req/s is the pooled rate), the p50 is the mean of the
    cells', the p99 the worst cell's, errors summed, and the batch size, forward time and server
    CPU per answer weighted by each cell's answers.
    """
    groups: dict[tuple[str, str, int, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.route, r.mode, r.clients, r.generator), []).append(r)
    out = []
    for (route, mode, clients, gen), rs in groups.items():
        n = sum(r.requests for r in rs)
        out.append(
            Result(
                route,
                mode,
                clients,
                n,
                sum(r.seconds for r in rs),
                float(np.mean([r.p50_ms for r in rs])),
                max(r.p99_ms for r in rs),
                sum(r.errors for r in rs),
                _weighted(rs, lambda r: r.avg_batch),
                _weighted(rs, lambda r: r.forward_ms),
                gen,
                _weighted(rs, lambda r: r.server_cpu_us),
            )
        )
    return out


LATEST_PATH = "/v1/signals/000300.SH/latest"


def pairs(results: list[Result]) -> str:
    """The forecast cells in the order they ran and the batched / unbatched ratio of each
    adjacent pair (B U, then U B); the pooled ratio is ``table``'s."""
    rows = []
    for gen in sorted({r.generator for r in results}):
        for c in sorted({r.clients for r in results}):
            cells = [r for r in results if (r.route, r.clients, r.generator) == (FORECAST, c, gen)]
            if len(cells) != len(PAIRED):
                continue
            b = [r.rps for r in cells if r.mode == "batched"]
            u = [r.rps for r in cells if r.mode == "unbatched"]
            rows.append(
                f"{gen}, {c} clients: forecast req/s in order "
                + " ".join(f"{r.mode[0].upper()} {r.rps:,.0f}" for r in cells)
                + f"; batched / unbatched by pair {b[0] / u[0]:.2f}x, {b[1] / u[1]:.2f}x"
            )
    return "\n".join(rows)


def _figures(results: list[Result], clients: int, gen: str) -> dict[str, object]:
    by = {(r.route, r.mode): r for r in results if r.clients == clients and r.generator == gen}
    b, u = by.get((FORECAST, "batched")), by.get((FORECAST, "unbatched"))
    lat, floor = by.get((LATEST, "batched")), by.get((FLOOR, "batched"))
    c = clients
    out: dict[str, object] = {"load_generator": gen}
    if b:
        out |= {f"forecast_rps_{c}": b.rps, f"forecast_p99_ms_{c}": b.p99_ms}
        out[f"forecast_avg_batch_{c}"] = b.avg_batch
        out[f"forecast_server_cpu_us_{c}"] = b.server_cpu_us
    if b and u:
        out[f"forecast_batched_over_unbatched_{c}"] = b.rps / u.rps
        out[f"forecast_unbatched_rps_{c}"] = u.rps
        out[f"forecast_unbatched_server_cpu_us_{c}"] = u.server_cpu_us
        if b.server_cpu_us and u.server_cpu_us:  # the batching gain in CPU, load-robust
            out[f"forecast_cpu_unbatched_over_batched_{c}"] = u.server_cpu_us / b.server_cpu_us
    if lat:
        out |= {f"latest_rps_{c}": lat.rps, f"latest_p99_ms_{c}": lat.p99_ms}
    if floor:
        out |= {f"floor_rps_{c}": floor.rps, f"floor_p99_ms_{c}": floor.p99_ms}
    out["errors"] = sum(r.errors for r in results if r.generator == gen)
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks api",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    ap.add_argument("--clients", default="64")
    ap.add_argument("--workers", type=int, default=2, help="server processes (quant serve)")
    ap.add_argument("--max-wait-ms", type=float, default=3.0)
    ap.add_argument(
        "--generator", choices=["both", "wrk", "python"], default="both", help="load generator(s)"
    )
    ap.add_argument("--intraday", action="store_true", help="forecast bodies carry 240 1-min bars")
    ap.add_argument(
        "--thread",
        dest="inline",
        action="store_false",
        help="forward passes on the inference thread (api.inline_forward = false)",
    )
    ap.add_argument("--dir", type=Path, default=None, help="reuse/keep the demo deployment here")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = ap.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    have_wrk = shutil.which("wrk") is not None
    gens = [g for g in ("wrk", "python") if args.generator in (g, "both")]
    if "wrk" in gens and not have_wrk:
        print("wrk not installed (make wrk): the Python client only", file=sys.stderr)
        gens = ["python"]
    os.nice(max(0, NICE - os.nice(0)))  # polite, but not below the other engineers' jobs
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        from quant.api.keys import KeyStore, keys_path
        from tests.support.demo import build_demo, request_body

        t0 = time.perf_counter()
        if (root / "quant.snapshot.duckdb").exists():  # --dir of an earlier run: reuse it
            from feeds.snapshot import open_snapshot
            from models.inputs import load_daily
            from tests.support.demo import SYMBOL

            con = open_snapshot(root / "quant.duckdb")
            daily = load_daily(con, SYMBOL)
            minute = con.sql("SELECT * FROM bars_intraday WHERE frequency = '1m'").pl()
            con.close()
        else:
            demo = build_demo(root)
            daily, minute = demo.daily, demo.minute
        print(f"demo deployment ready in {time.perf_counter() - t0:.1f} s ({root})")
        ks = KeyStore(keys_path(root / "quant.duckdb"))
        key, _ = ks.create(["forecast", "signals:read"], "bench")
        ks.close()
        sessions = daily.get_column("session").to_list()
        ends = sessions[-50:]
        if args.intraday:
            have = set(minute.get_column("session").unique().to_list())
            ends = [s for s in ends if s in have]
        bodies = [
            json.dumps(request_body(daily, minute if args.intraday else None, e)).encode()
            for e in ends
        ]
        bodies_file = Path(tmp) / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
        py_reqs = {
            FORECAST: [_request("POST", "/v1/forecast", key, b) for b in bodies],
            LATEST: [_request("GET", LATEST_PATH, key)],
            FLOOR: [_request("GET", "/healthz", key)],
        }
        wrk_args = {
            FORECAST: ("POST", "/v1/forecast", bodies_file),
            LATEST: ("GET", LATEST_PATH, None),
            FLOOR: ("GET", "/healthz", None),
        }
        results: list[Result] = []

        def cell(server: tuple[int, int], route: str, mode: str, c: int, gen: str) -> None:
            port, pid = server
            if gen == "wrk":
                method, path, bf = wrk_args[route]
                r = _run_wrk(port, pid, route, mode, method, path, bf, key, c, args.seconds)
            else:
                r = _run(port, pid, route, mode, py_reqs[route], c, args.seconds)
            results.append(r)
            print(table([r]).splitlines()[1], flush=True)

        db = root / "quant.duckdb"
        with (
            _server(db, 64, args.max_wait_ms, args.inline, args.workers) as batched,
            _server(db, 1, args.max_wait_ms, args.inline, args.workers) as unbatched,
        ):  # both up for the whole run: the forecast cells alternate B U U B (module doc)
            for gen in gens:
                for c in clients:
                    for mode in PAIRED:
                        cell(batched if mode == "batched" else unbatched, FORECAST, mode, c, gen)
                    cell(batched, LATEST, "batched", c, gen)
                    cell(batched, FLOOR, "batched", c, gen)
        load = load_average()
        print()
        print(
            f"forecast body: 45 daily bars{' + 240 1-minute bars' if args.intraday else ''}; "
            f"{args.seconds:.0f} s per cell after warm-up; max wait {args.max_wait_ms} ms; "
            f"forward on the {'event loop' if args.inline else 'inference thread'}; "
            f"{args.workers} server worker(s); {os.cpu_count()} CPUs shared by server and "
            f"load generator; machine {load}"
        )
        pooled = pool(results)
        print(table(pooled))
        print(pairs(results))
        c = max(clients)
        figures = _figures(pooled, c, gens[0])
        for gen in gens[1:]:
            figures[f"{gen}_client"] = _figures(pooled, c, gen)
        write_json(
            args.json,
            {
                "benchmark": "api",
                **figures,
                "workers": args.workers,
                "clients": c,
                "seconds_per_cell": args.seconds,
                "load_at_measurement": load,
                "cells": [{**r.__dict__, "rps": r.rps} for r in results],
            },
        )


if __name__ == "__main__":
    main(sys.argv[1:])
