"""API load benchmark: /v1/forecast (batched vs unbatched) and /v1/signals/.../latest.

``python -m benchmarks.bench_api [--seconds 5] [--clients 1,8,64] [--intraday] [--thread]
[--dir DIR]``

Builds the seeded demo deployment (SYNTHETIC market, small trained champion, published signals,
snapshot), then runs ``quant serve`` on a free loopback port twice: with dynamic batching
(``--max-batch 64``) and without (``--max-batch 1``).  This process is the load generator: a
minimal HTTP/1.1 keep-alive client on asyncio (one connection per client, each sending its next
request when the last answer arrived: closed loop, no think time).  Both processes run under
``nice`` (niceness 10, the server inherits it).  Every forecast body is different (45 daily
bars ending on a different session).
Average batch size comes from the server's own /metrics (samples / forward passes) per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
            if t0 >= warm_until:
                lat.append(t1 - t0)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


async def _load(
    port: int, requests: list[bytes], clients: int, seconds: float
) -> tuple[list[float], list[int], float]:
    lat: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    warm_until = start + min(1.0, seconds / 3)
    stop_at = warm_until + seconds
    await asyncio.gather(
        *(_client(port, requests, stop_at, warm_until, lat, errors, k * 7) for k in range(clients))
    )
    return lat, errors, seconds


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


@contextmanager
def _server(store: Path, max_batch: int, max_wait_ms: float, inline: bool) -> Iterator[int]:
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
    ]
    env = {**os.environ, "QUANT__API__INLINE_FORWARD": "true" if inline else "false"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        import httpx

        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if httpx.get(f"http://{HOST}:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("server not ready after 120 s")
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run(
    port: int, route: str, mode: str, reqs: list[bytes], clients: int, seconds: float
) -> Result:
    s0, c0, f0 = _metrics(port)
    lat, errors, dur = asyncio.run(_load(port, reqs, clients, seconds))
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
    )


def table(results: list[Result]) -> str:
    rows = [
        f"{'route':<30} {'mode':<10} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'avg batch':>9} {'fwd ms':>7}"
    ]
    for r in results:
        ab = f"{r.avg_batch:.1f}" if r.avg_batch is not None else "-"
        fw = f"{r.forward_ms:.2f}" if r.forward_ms is not None else "-"
        rows.append(
            f"{r.route:<30} {r.mode:<10} {r.clients:>7} {r.rps:>8.0f} {r.p50_ms:>8.1f} "
            f"{r.p99_ms:>8.1f} {r.errors:>6} {ab:>9} {fw:>7}"
        )
    by = {(r.route, r.mode, r.clients): r for r in results}
    rows.append("")
    for c in sorted({r.clients for r in results}):
        b, u = (
            by.get(("POST /v1/forecast", "batched", c)),
            by.get(("POST /v1/forecast", "unbatched", c)),
        )
        if b and u:
            rows.append(
                f"forecast throughput batched / unbatched at {c:>2} clients: {b.rps / u.rps:.2f}x"
            )
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--max-wait-ms", type=float, default=3.0)
    ap.add_argument("--intraday", action="store_true", help="forecast bodies carry 240 1-min bars")
    ap.add_argument(
        "--thread",
        dest="inline",
        action="store_false",
        help="forward passes on the inference thread (api.inline_forward = false)",
    )
    ap.add_argument("--dir", type=Path, default=None, help="reuse/keep the demo deployment here")
    args = ap.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    os.nice(max(0, NICE - os.nice(0)))  # polite, but not below the other engineers' jobs
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        from quant.api.demo import build_demo, request_body
        from quant.api.keys import KeyStore, keys_path

        t0 = time.perf_counter()
        if (root / "quant.snapshot.duckdb").exists():  # --dir of an earlier run: reuse it
            from feeds.snapshot import open_snapshot
            from models.inputs import load_daily
            from quant.api.demo import SYMBOL

            con = open_snapshot(root / "quant.duckdb")
            daily = load_daily(con, SYMBOL)
            minute = con.execute("SELECT * FROM bars_intraday WHERE frequency = '1m'").pl()
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
        fc_reqs = [_request("POST", "/v1/forecast", key, b) for b in bodies]
        latest = [_request("GET", "/v1/signals/000300.SH/latest", key)]
        results: list[Result] = []
        for mode, batch in (("batched", 64), ("unbatched", 1)):
            with _server(root / "quant.duckdb", batch, args.max_wait_ms, args.inline) as port:
                for c in clients:
                    results.append(_run(port, "POST /v1/forecast", mode, fc_reqs, c, args.seconds))
                    print(table(results[-1:]).splitlines()[1], flush=True)
                if mode == "batched":
                    for c in clients:
                        results.append(
                            _run(port, "GET /v1/signals/{s}/latest", mode, latest, c, args.seconds)
                        )
                        print(table(results[-1:]).splitlines()[1], flush=True)
        print()
        print(
            f"forecast body: 45 daily bars{' + 240 1-minute bars' if args.intraday else ''}; "
            f"{args.seconds:.0f} s per cell after warm-up; max wait {args.max_wait_ms} ms; "
            f"forward on the {'event loop' if args.inline else 'inference thread'}; "
            f"{os.cpu_count()} CPUs shared by server and client"
        )
        print(table(results))


if __name__ == "__main__":
    main(sys.argv[1:])
