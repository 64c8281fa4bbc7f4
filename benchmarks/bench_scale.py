"""Scale benchmark: a synthetic panel through the Parquet lake, and fits through the executors.

``python -m benchmarks scale [--symbols 300] [--year 2024] [--fits 8] [--json F]``

1. Panel: ``--symbols`` synthetic symbols x one year of 1-minute bars (300 x 2024 = 17.4 M rows)
   plus their daily bars, appended to a file store (setup, timed but not the subject).
2. Export: ``feeds.lake.export_lake`` (fingerprints, one ``COPY`` per partition, sha256, fsync,
   atomic rename, manifest) against the alternative, one ``COPY ... PARTITION_BY`` pass per bar
   table (no manifest, no atomic placement); then a re-export of the unchanged store (must
   write nothing).
3. Scans: one symbol's year of 1-minute bars into polars through ``feeds.read.intraday_bars``,
   and an aggregate over every bar (count, mean close, range, volume per symbol), each from the
   lake (``open_lake``) and from the DuckDB store file (the ratio column: lake / store).
4. Executors: the walk-forward (when ``models.walkforward.walk_forward`` takes ``executor=``),
   otherwise a batch of ``--fits`` independent seeded fits of the fused model and the LSTM,
   through ``local`` (one torch thread), ``process`` (2 workers) and ``ray`` (a 2-CPU local
   cluster, its start-up timed apart); every executor's results must equal local's.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.output import write_json
from feeds.lake import export_lake, open_lake
from feeds.read import intraday_bars
from feeds.store import open_store, transaction
from feeds.synthetic import synthetic_market
from feeds.writer import write_bars

_COLS = "symbol, kind, source, session, ts, open, high, low, close, volume, amount, open_interest"


def build_panel(db: Path, symbols: int, year: int) -> dict[str, float]:
    """Append ``symbols`` seeded synthetic symbols (daily + 1-minute bars of ``year``)."""
    con = open_store(db)
    t0 = time.perf_counter()
    gen = 0.0
    for i in range(symbols):
        g = time.perf_counter()
        m = synthetic_market(
            date(year, 1, 1), date(year, 12, 31), seed=1000 + i, symbol=f"SYN{i:03d}.SH"
        )
        gen += time.perf_counter() - g
        con.register("_d", m.daily.to_arrow())
        con.execute(f"INSERT INTO bars_daily ({_COLS}, ingested_at) SELECT {_COLS}, now() FROM _d")
        con.unregister("_d")
        with transaction(con):  # the intraday rows under their series id (no checks)
            write_bars(con, m.minute, file_sha256=None)
    con.execute("CHECKPOINT")
    (minute,) = con.execute("SELECT count(*) FROM bars_intraday").fetchall()[0]
    (daily,) = con.execute("SELECT count(*) FROM bars_daily").fetchall()[0]
    con.close()
    total = time.perf_counter() - t0
    return {"minute_rows": minute, "daily_rows": daily, "seconds": total, "generate_s": gen}


def partitioned_pass(con: duckdb.DuckDBPyConnection, root: Path) -> float:
    """The alternative: one ``COPY ... PARTITION_BY`` pass per bar table (no manifest, no
    atomic placement; DuckDB may split a partition into several files)."""
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for name, select in (
        (
            "daily",
            "SELECT '1d' AS frequency, symbol, year(session) AS year, * EXCLUDE (symbol) "
            "FROM bars_daily",
        ),
        ("intraday", "SELECT year(session) AS year, * FROM bars_intraday"),
    ):
        con.execute(
            f"COPY ({select} ORDER BY frequency, symbol, year, source, ts) TO '{root / name}' "
            "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (frequency, symbol, year))"
        )
    return time.perf_counter() - t0


def _best(fn: Callable[[], int], repeat: int = 3) -> tuple[int, float]:
    best = float("inf")
    n = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return n, best


_AGG = (
    "SELECT symbol, count(*), avg(close), max(high) - min(low), sum(volume) "
    "FROM bars_intraday GROUP BY symbol"
)


def scans(db: Path, lake: Path, symbol: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, con in (("lake", open_lake(lake)), ("store", open_store(db, read_only=True))):
        n1, s1 = _best(lambda c=con: intraday_bars(c, symbol, "1m").height)
        n_all, s_all = _best(
            lambda c=con: sum(r[1] for r in c.execute(_AGG).fetchall()),
        )
        con.close()
        out[name] = {
            "one_symbol": {"rows": n1, "seconds": s1, "rows_per_s": n1 / s1},
            "all_symbols": {"rows": n_all, "seconds": s_all, "rows_per_s": n_all / s_all},
        }
    return out


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.parquet"))


def _panel(db: Path, symbols: int, year: int) -> dict[str, Any]:
    """Build the panel store, or reuse one that ``--panel`` kept from an earlier run."""
    meta = db.with_suffix(".json")
    want = {"symbols": symbols, "year": year}
    if db.exists() and meta.exists():
        kept = json.loads(meta.read_text())
        if {k: kept.get(k) for k in want} == want:
            return {**kept, "reused": True}
        db.unlink()
    db.parent.mkdir(parents=True, exist_ok=True)
    panel = {**want, **build_panel(db, symbols, year), "reused": False}
    meta.write_text(json.dumps(panel))
    return panel


def lake_part(symbols: int, year: int, alt: bool, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        db, lake = (keep or Path(tmp)) / "panel.duckdb", Path(tmp) / "lake"
        panel = _panel(db, symbols, year)
        rows = panel["minute_rows"] + panel["daily_rows"]
        how = "reused" if panel["reused"] else f"appended in {panel['seconds']:.1f}s"
        print(f"panel: {symbols} symbols, {rows:,} rows {how}")
        con = open_store(db, read_only=True)
        rep = export_lake(con, lake)
        again = export_lake(con, lake)
        alt_s = partitioned_pass(con, Path(tmp) / "alt") if alt else None
        con.close()
        sc = scans(db, lake, "SYN000.SH")
        export = {
            "rows": rep.rows,
            "partitions": len(rep.written),
            "seconds": rep.seconds,
            "rows_per_s": rep.rows / rep.seconds,
            "phases_s": rep.phases,
            "lake_bytes": _dir_bytes(lake),
            "store_bytes": db.stat().st_size,
            "reexport_unchanged_s": again.seconds,
            "reexport_written": len(again.written),
            "alternative_partition_by_pass_s": alt_s,
        }
        shutil.rmtree(lake)
    return {"panel": panel, "export": export, "scan": sc}


def print_lake(r: dict[str, Any]) -> None:
    e, sc = r["export"], r["scan"]
    print(f"{'lake path':<46} {'rows':>11} {'seconds':>8} {'rows/s':>12} {'ratio':>7}")
    alt = e["alternative_partition_by_pass_s"]
    print(
        f"{'export (COPY per partition, sha256, rename)':<46} {e['rows']:>11,} "
        f"{e['seconds']:>8.2f} {e['rows_per_s']:>12,.0f} "
        f"{(alt / e['seconds']) if alt else float('nan'):>6.1f}x"
    )
    if alt:
        print(
            f"{'alternative: one PARTITION_BY pass':<46} {e['rows']:>11,} {alt:>8.2f} "
            f"{e['rows'] / alt:>12,.0f} {1:>6.1f}x"
        )
    print(
        f"{'re-export unchanged (files written: ' + str(e['reexport_written']) + ')':<46} "
        f"{'':>11} {e['reexport_unchanged_s']:>8.2f}"
    )
    for what in ("one_symbol", "all_symbols"):
        lk, st = sc["lake"][what], sc["store"][what]
        for name, x in (("lake", lk), ("store file", st)):
            label = f"scan {what.replace('_', ' ')} from {name}"
            print(
                f"{label:<46} {x['rows']:>11,} "
                f"{x['seconds']:>8.3f} {x['rows_per_s']:>12,.0f} "
                f"{x['rows_per_s'] / st['rows_per_s']:>6.2f}x"
            )
    ph = ", ".join(f"{k} {v:.1f}s" for k, v in e["phases_s"].items())
    print(f"export phases: {ph} (place: sha256, fsync, rename)")
    print(
        f"lake {e['lake_bytes'] / 2**20:,.0f} MiB in {e['partitions']} files; "
        f"store file {e['store_bytes'] / 2**20:,.0f} MiB"
    )


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--symbols", type=int, default=300, help="synthetic symbols in the panel")
    ap.add_argument("--year", type=int, default=2024, help="the panel's year of 1-minute bars")
    ap.add_argument("--fits", type=int, default=8, help="independent fits per executor")
    ap.add_argument("--max-epochs", type=int, default=6, help="epochs per fit")
    ap.add_argument("--rounds", type=int, default=3, help="warm runs per executor (median)")
    ap.add_argument("--no-alt", action="store_true", help="skip the PARTITION_BY alternative")
    ap.add_argument("--skip-lake", action="store_true", help="only the executor part")
    ap.add_argument("--skip-executors", action="store_true", help="only the lake part")
    ap.add_argument("--panel", type=Path, help="keep the panel store in this folder and reuse it")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    from benchmarks.bench_scale_fits import executor_part, print_executors

    result: dict[str, Any] = {
        "command": "python -m benchmarks scale " + " ".join(argv),
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
    }
    if not args.skip_lake:
        result["lake"] = lake_part(args.symbols, args.year, not args.no_alt, args.panel)
        print_lake(result["lake"])
    if not args.skip_executors:
        result["executors"] = executor_part(args.fits, args.max_epochs, args.rounds)
        print_executors(result["executors"])
    result["load_avg_end"] = os.getloadavg()
    print(f"load average start {result['load_avg_start']}, end {result['load_avg_end']}")
    write_json(args.json, result)


def walk_forward_takes_executor() -> bool:
    from models.walkforward import walk_forward

    return "executor" in inspect.signature(walk_forward).parameters


if __name__ == "__main__":
    main(sys.argv[1:])
