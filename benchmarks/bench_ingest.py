"""Ingest benchmark: bulk load of synthetic 1-minute bars vs a naive row-by-row INSERT.

``python -m benchmarks.bench_ingest [--rows 10000000] [--naive-rows 20000]``

The bulk path is the store's own (``feeds.ingest.ingest_frame``: validation, upsert, quarantine,
session-gap accounting, one transaction per chunk) into a file-backed store.  It runs in a child
process so its peak RSS is measured alone.  The naive path inserts one row per statement.
A final row times reading 5 years of 1-minute bars of one symbol into polars.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

from feeds.read import intraday_bars
from feeds.schema import BAR_COLUMNS
from feeds.store import open_store, transaction
from feeds.synthetic import synthetic_market

YEARS = (date(2015, 1, 1), date(2019, 12, 31))  # ~1,220 sessions x 240 bars per symbol


def _symbol_bars(i: int) -> pl.DataFrame:
    m = synthetic_market(*YEARS, seed=100 + i, symbol=f"SYN{i:03d}.SH", minute_sessions=None)
    return m.minute


def bulk(db: Path, rows: int) -> dict[str, float]:
    """Child process: load ``rows`` synthetic minute bars symbol by symbol (chunks of ~290k)."""
    from feeds.ingest import ingest_frame

    con = open_store(db)
    loaded = gen_s = load_s = 0.0
    i = 0
    while loaded < rows:
        t0 = time.perf_counter()
        frame = _symbol_bars(i)
        frame = frame.head(int(min(frame.height, rows - loaded)))
        t1 = time.perf_counter()
        ingest_frame(con, frame, name=f"bench://{i}", key=f"bench:{i}:{frame.height}")
        t2 = time.perf_counter()
        gen_s += t1 - t0
        load_s += t2 - t1
        loaded += frame.height
        i += 1
    con.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": loaded, "load_s": load_s, "generate_s": gen_s, "peak_rss_mib": peak_mib}


def naive(db: Path, rows: int) -> dict[str, float]:
    """Row-by-row INSERT statements in one transaction (the approach to beat)."""
    con = open_store(db)
    frame = _symbol_bars(999).head(rows).select(BAR_COLUMNS)
    records = frame.rows()
    cols = ", ".join(c for c in BAR_COLUMNS)
    marks = ", ".join("?" for _ in BAR_COLUMNS)
    t0 = time.perf_counter()
    with transaction(con):
        for r in records:
            con.execute(
                f"INSERT INTO bars_intraday ({cols}, ingested_at) VALUES ({marks}, now())", list(r)
            )
    dt = time.perf_counter() - t0
    con.close()
    return {"rows": len(records), "load_s": dt}


def raw_append(db: Path, rows: int) -> dict[str, float]:
    """Reference: the same bars appended to a table WITHOUT a primary key and without validation.

    Shows what the store's guarantees cost (the ART index behind the primary key dominates).
    """
    con = open_store(db)
    con.execute(
        "CREATE TABLE raw AS SELECT * EXCLUDE (file_sha256, ingested_at) FROM bars_intraday LIMIT 0"
    )
    loaded, dt, i = 0, 0.0, 0
    while loaded < rows:
        frame = _symbol_bars(i).select(BAR_COLUMNS)
        frame = frame.head(int(min(frame.height, rows - loaded)))
        con.register("_f", frame.to_arrow())
        t0 = time.perf_counter()
        con.execute("INSERT INTO raw SELECT * FROM _f")
        dt += time.perf_counter() - t0
        con.unregister("_f")
        loaded += frame.height
        i += 1
    con.close()
    return {"rows": loaded, "load_s": dt}


def read_five_years(db: Path) -> dict[str, float]:
    con = open_store(db, read_only=True)
    t0 = time.perf_counter()
    df = intraday_bars(con, "SYN000.SH", "1m", start=YEARS[0], end=YEARS[1])
    dt = time.perf_counter() - t0
    con.close()
    return {"rows": df.height, "read_s": dt}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--naive-rows", type=int, default=20_000)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(bulk(Path(args.child), args.rows)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_ingest",
                "--child",
                str(db),
                "--rows",
                str(args.rows),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        b = json.loads(out.strip().splitlines()[-1])
        rd = read_five_years(db)
        n = naive(Path(tmp) / "naive.duckdb", args.naive_rows)
        raw = raw_append(Path(tmp) / "raw.duckdb", min(args.rows, 2_000_000))
    bulk_rps = b["rows"] / b["load_s"]
    naive_rps = n["rows"] / n["load_s"]
    print(f"{'path':<40} {'rows':>11} {'seconds':>9} {'rows/s':>12} {'ratio':>8}")
    print(
        f"{'bulk ingest (validate+upsert, 1 txn/chunk)':<40} {b['rows']:>11,.0f} "
        f"{b['load_s']:>9.2f} {bulk_rps:>12,.0f} {bulk_rps / naive_rps:>7.0f}x"
    )
    print(
        f"{'naive row-by-row INSERT':<40} {n['rows']:>11,.0f} {n['load_s']:>9.2f} "
        f"{naive_rps:>12,.0f} {1:>7.0f}x"
    )
    raw_rps = raw["rows"] / raw["load_s"]
    print(
        f"{'reference: append, no PK, no checks':<40} {raw['rows']:>11,.0f} "
        f"{raw['load_s']:>9.2f} {raw_rps:>12,.0f} {raw_rps / naive_rps:>7.0f}x"
    )
    print(
        f"{'read 5y of 1m bars, one symbol (polars)':<40} {rd['rows']:>11,.0f} "
        f"{rd['read_s']:>9.2f} {rd['rows'] / rd['read_s']:>12,.0f}"
    )
    print(
        f"bulk child peak RSS: {b['peak_rss_mib']:,.0f} MiB (includes generating the bars, "
        f"{b['generate_s']:.1f} s, not counted in the load time)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
