"""Ingest benchmark: bulk load of synthetic 1-minute bars vs a naive row-by-row INSERT.

``python -m benchmarks ingest [--rows 10000000] [--naive-rows 20000] [--pk-rows 2000000]
[--json FILE]``

The bulk path is the store's own (``feeds.ingest.ingest_frame``: validation, duplicate check
against the stored keys, Arrow insert, quarantine, session-gap accounting, one transaction per
chunk of ~290k rows) into a file-backed store.  It runs in a child process so its peak RSS is
measured alone; its time is split as the ingest reports it (validate, keys, insert, gaps, log).
References in the same run: the same path into a store created with the older primary key on
``bars_intraday`` (the ART index), a plain Arrow append with no key and no checks, and the naive
path (one INSERT statement per row).  A final row times reading 5 years of 1-minute bars of one
symbol into polars.
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
from typing import Any

import polars as pl

from benchmarks.output import load_average, write_json
from feeds.read import intraday_bars
from feeds.schema import BAR_COLUMNS
from feeds.store import open_store, transaction
from feeds.synthetic import synthetic_market

YEARS = (date(2015, 1, 1), date(2019, 12, 31))  # ~1,220 sessions x 240 bars per symbol


def _symbol_bars(i: int) -> pl.DataFrame:
    m = synthetic_market(*YEARS, seed=100 + i, symbol=f"SYN{i:03d}.SH", minute_sessions=None)
    return m.minute


_OLD_PK_TABLE = """
CREATE TABLE bars_intraday (
    symbol VARCHAR NOT NULL, kind VARCHAR NOT NULL, frequency VARCHAR NOT NULL,
    source VARCHAR NOT NULL, session DATE NOT NULL, ts TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
    volume DOUBLE, amount DOUBLE, open_interest DOUBLE, file_sha256 VARCHAR,
    ingested_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (symbol, frequency, source, ts)
)"""


def bulk(db: Path, rows: int, *, primary_key: bool = False) -> dict[str, object]:
    """Child process: load ``rows`` synthetic minute bars symbol by symbol (chunks of ~290k)."""
    import duckdb

    from feeds.ingest import ingest_frame

    if primary_key:  # the store as created before the key moved from an index to the writer
        with duckdb.connect(str(db)) as old:
            old.execute(_OLD_PK_TABLE)
    con = open_store(db)
    loaded = gen_s = load_s = 0.0
    phases: dict[str, float] = {}
    i = 0
    while loaded < rows:
        t0 = time.perf_counter()
        frame = _symbol_bars(i)
        frame = frame.head(int(min(frame.height, rows - loaded)))
        t1 = time.perf_counter()
        rep = ingest_frame(con, frame, name=f"bench://{i}", key=f"bench:{i}:{frame.height}")
        t2 = time.perf_counter()
        assert rep.rows_inserted == frame.height and rep.rows_quarantined == 0
        for k, v in rep.seconds.items():
            phases[k] = phases.get(k, 0.0) + v
        gen_s += t1 - t0
        load_s += t2 - t1
        loaded += frame.height
        i += 1
    t0 = time.perf_counter()
    con.close()  # any checkpoint left for the close counts as load time
    load_s += time.perf_counter() - t0
    phases["close"] = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": loaded,
        "load_s": load_s,
        "generate_s": gen_s,
        "peak_rss_mib": peak_mib,
        "phases": phases,
    }


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


def _child(db: Path, rows: int, *, primary_key: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_ingest", "--child", str(db), "--rows", str(rows)]
    out = subprocess.run(
        [*cmd, *(["--primary-key"] if primary_key else [])],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks ingest", description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--naive-rows", type=int, default=20_000)
    ap.add_argument("--pk-rows", type=int, default=2_000_000, help="rows of the primary-key run")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--primary-key", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(bulk(Path(args.child), args.rows, primary_key=args.primary_key)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        b = _child(db, args.rows, primary_key=False)
        load = load_average()
        rd = read_five_years(db)
        pk = _child(Path(tmp) / "pk.duckdb", min(args.rows, args.pk_rows), primary_key=True)
        n = naive(Path(tmp) / "naive.duckdb", args.naive_rows)
        raw = raw_append(Path(tmp) / "raw.duckdb", min(args.rows, 2_000_000))
    bulk_rps = b["rows"] / b["load_s"]
    naive_rps = n["rows"] / n["load_s"]
    pk_rps = pk["rows"] / pk["load_s"]
    raw_rps = raw["rows"] / raw["load_s"]
    print(f"machine: {load} (at the end of the bulk run)")
    print(f"{'path':<44} {'rows':>11} {'seconds':>9} {'rows/s':>12} {'ratio':>8}")
    table = [
        ("bulk ingest (validate, key check, insert)", b["rows"], b["load_s"], bulk_rps),
        ("same, store with the old primary key", pk["rows"], pk["load_s"], pk_rps),
        ("reference: Arrow append, no key, no checks", raw["rows"], raw["load_s"], raw_rps),
        ("naive row-by-row INSERT", n["rows"], n["load_s"], naive_rps),
    ]
    for name, rows, secs, rps in table:
        print(f"{name:<44} {rows:>11,.0f} {secs:>9.2f} {rps:>12,.0f} {rps / naive_rps:>7.0f}x")
    print(
        f"{'read 5y of 1m bars, one symbol (polars)':<44} {rd['rows']:>11,.0f} "
        f"{rd['read_s']:>9.2f} {rd['rows'] / rd['read_s']:>12,.0f}"
    )
    total = sum(b["phases"].values())
    print("bulk ingest, where the time goes (parse is 0: the bars arrive as frames):")
    for k, v in b["phases"].items():
        pk_v = pk["phases"].get(k, 0.0) * b["rows"] / pk["rows"]
        print(f"  {k:<10} {v:>8.2f} s  {v / total:>6.1%}   (old primary key, scaled: {pk_v:.2f} s)")
    print(
        f"bulk child peak RSS: {b['peak_rss_mib']:,.0f} MiB (includes generating the bars, "
        f"{b['generate_s']:.1f} s, not counted in the load time)"
    )
    sys.stdout.flush()
    write_json(
        args.json,
        {
            "benchmark": "ingest",
            "bulk_rows_per_s": bulk_rps,
            "naive_rows_per_s": naive_rps,
            "peak_rss_mib": b["peak_rss_mib"],
            "rows": b["rows"],
            "primary_key_rows_per_s": pk_rps,
            "raw_append_rows_per_s": raw_rps,
            "phases_s": b["phases"],
            "primary_key_phases_s": pk["phases"],
            "load_at_measurement": load,
        },
    )


if __name__ == "__main__":
    main(sys.argv[1:])
