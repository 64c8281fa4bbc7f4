"""Request tallies (``Metrics.count`` then ``flush``) give the same series as Prometheus's own
``inc`` and ``observe`` per request, bucket bounds included, in one process and merged."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from quant.api.metrics import LATENCY_BUCKETS, MULTIPROC_ENV, Metrics

ROUTES = ("/v1/forecast", "/v1/signals/{symbol}/latest")
latencies = st.one_of(
    st.sampled_from((0.0, *LATENCY_BUCKETS, 3.0, 1e9)),  # on the bounds, below, above
    st.floats(0, 5, allow_nan=False),
)
requests = st.lists(
    st.tuples(st.sampled_from(ROUTES), st.sampled_from((200, 404, 503)), latencies), max_size=60
)


def _reference(reqs: list[tuple[str, int, float]]) -> list[str]:
    r = CollectorRegistry()
    c = Counter("quant_api_requests", "", ["route", "method", "status"], registry=r)
    h = Histogram(
        "quant_api_request_seconds", "", ["route", "method"], buckets=LATENCY_BUCKETS, registry=r
    )
    for route, status, s in reqs:
        c.labels(route, "GET", str(status)).inc()
        h.labels(route, "GET").observe(s)
    return _series(generate_latest(r))


def _series(text: bytes) -> list[str]:
    keep = ("quant_api_requests_total", "quant_api_request_seconds")
    return sorted(line for line in text.decode().splitlines() if line.startswith(keep))


def _equal(got: list[str], want: list[str]) -> bool:
    """The same series, values equal to 1e-12 relative (sums add in another order)."""
    pairs = [(g.rsplit(" ", 1), w.rsplit(" ", 1)) for g, w in zip(got, want, strict=False)]
    return len(got) == len(want) and all(
        gn == wn and math.isclose(float(gv), float(wv), rel_tol=1e-12, abs_tol=1e-12)
        for (gn, gv), (wn, wv) in pairs
    )


@settings(max_examples=200, deadline=None)
@given(reqs=requests, flush_every=st.integers(1, 25))
def test_tallies_equal_per_request_observations(
    reqs: list[tuple[str, int, float]], flush_every: int
) -> None:
    m = Metrics(lambda: 0)
    for i, (route, status, s) in enumerate(reqs):
        m.count(route, "GET", status, s)
        if i % flush_every == 0:
            m.flush()
    got = _series(m.render())
    assert _equal(got, _reference(reqs)), (got, _reference(reqs))


_MERGED = """
import json, sys
from quant.api.metrics import Metrics
from tests.api.test_metrics_tally import _series
reqs = json.loads(sys.argv[1])
m = Metrics(lambda: 0)
for route, status, s in reqs:
    m.count(route, "GET", status, s)
reader = Metrics(lambda: 0)  # renders the merge of the folder, as any worker's /metrics does
before = _series(reader.render())
m.flush()
print(json.dumps([before, _series(reader.render())]))
"""


def test_tallies_reach_the_merged_metrics_of_every_worker(tmp_path: Path) -> None:
    """Multiprocess mode (chosen at import, so in a fresh process): a tally is in the files
    another process's scrape merges once it is flushed, not before."""
    reqs = [(ROUTES[0], 200, 0.003), (ROUTES[0], 200, 0.02), (ROUTES[1], 404, 0.0005)]
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", _MERGED, json.dumps(reqs)],
        env=env, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    ).stdout  # fmt: skip
    before, after = json.loads(out)
    assert not any("_total" in line or "_count" in line for line in before)
    assert _equal(after, _reference(reqs)), after
