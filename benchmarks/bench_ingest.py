"""Ingest benchmark: bulk load of synthetic 1-minute bars vs a naive row-by-row INSERT.

``python -m benchmarks ingest [--rows 10000000] [--naive-rows 20000] [--file-rows 292560]
[--json FILE]``

The bulk path is the store's own (``feeds.bulk.ingest_frames``: each chunk of ~290k rows is one
``ingest_frame`` (validation, duplicate check against the stored keys, Arrow insert under integer
series and batch ids, quarantine, session-gap accounting, one transaction; a checkpoint every few
million rows), with the next chunk validated on a worker thread while this one lands) into a file-
backed store. It runs in a child process so its peak RSS and CPU time are measured alone;
generating the bars happens between landings on the same thread and is subtracted from the load
time; its time is split as the ingest reports it (validate, count, keys, insert, gaps, log,
checkpoint; validate and count run on the worker thread, beside the others). References in the
same run: a plain Arrow append with no key and no checks into a table with the series and the
file's hash spelled out on every row (the store's layout before the series key) and into the
store's layout (its codecs too), and the naive path (one INSERT statement per row).
The bars are quoted as the vendor files quote them (prices to 0.001 index points, volume and
amount in whole units); the same bulk load of the generator's unrounded floats is another row.
The store pins each column's codec (``feeds.schema``: ALP for the values); each of the two
loads is run again into a table that leaves DuckDB to analyse every codec for every segment
(it picks ALP for decimal doubles, ALP-RD for unrounded ones), and the store files' sizes are
printed.  Where
``../shared/data/real`` is present, a further row loads the real IF 1-minute bars (the Sina
expiry-week file as ``ingest_file`` validates it) seven times a batch under symbols of their
own: real values and gaps, several series a batch; without the file it says it skipped.
A vendor CSV of one symbol's 1-minute bars goes through ``ingest_file`` to time parsing; a final
row times reading 5 years of 1-minute bars of one symbol into polars.
A last line times the session-gap accounting of one batch with gaps (two symbols' bars, one
missing from every fifth session) against the per-session loop it replaced.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.output import load_average, write_json
from feeds.read import intraday_bars
from feeds.schema import BAR_COLUMNS, INTRADAY_VALUES, VALUE_FIELDS
from feeds.store import open_store, transaction
from feeds.synthetic import synthetic_market

YEARS = (date(2015, 1, 1), date(2019, 12, 31))  # ~1,220 sessions x 240 bars per symbol


def _symbol_bars(i: int, *, quoted: bool = True) -> pl.DataFrame:
    """One synthetic symbol's 5 years of 1-minute bars; ``quoted``: as a vendor quotes them
    (prices to 0.001 index points, like the Sina 1-minute index file, volume and amount in whole
    shares and yuan, like the daily files), else the generator's unrounded floats."""
    m = synthetic_market(*YEARS, seed=100 + i, symbol=f"SYN{i:03d}.SH", minute_sessions=None)
    if not quoted:
        return m.minute
    # rounding is monotone: a consistent bar (low <= open, close <= high) stays consistent
    prices = [pl.col(c).round(3) for c in ("open", "high", "low", "close")]
    return m.minute.with_columns(*prices, pl.col("volume").round(0), pl.col("amount").round(0))


_STRING_TABLE = """
CREATE TABLE {name} (
    symbol VARCHAR NOT NULL, kind VARCHAR NOT NULL, frequency VARCHAR NOT NULL,
    source VARCHAR NOT NULL, session DATE NOT NULL, ts TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
    volume DOUBLE, amount DOUBLE, open_interest DOUBLE, file_sha256 VARCHAR,
    ingested_at TIMESTAMPTZ NOT NULL
)"""


REAL_1M = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/real"
    / ("if_futures_1min_sina_expiryweeks.csv")
)
REAL_ROW = "same, real IF 1-minute bars, 7 symbols a batch"
REAL_COPIES = 7  # symbols per chunk of the real bars: ~290k rows, like a synthetic chunk


def _real_chunks() -> Callable[[int], pl.DataFrame]:
    """Chunk ``i`` of the real IF 1-minute bars (``REAL_1M`` as ``ingest_file`` validates it),
    ``REAL_COPIES`` times under symbols of their own: real values, many series per batch; one
    chunk of memory, as a parsed vendor file arrives."""
    from feeds.ingest import prepare_file

    base = prepare_file(REAL_1M).bars.drop("_line")

    def chunk(i: int) -> pl.DataFrame:
        names = [f"IF{i * REAL_COPIES + j:04d}.CFE" for j in range(REAL_COPIES)]
        return pl.concat([base.with_columns(symbol=pl.lit(n)) for n in names], rechunk=True)

    return chunk


def _automatic_codecs(db: Path) -> None:
    """Create the store's bar table in ``db`` as ``feeds.schema`` declares it but for its pinned
    codecs, so DuckDB analyses every codec for every segment (the store before 2026-12-03);
    ``open_store`` then keeps it (CREATE TABLE IF NOT EXISTS)."""
    import duckdb

    from feeds.schema import INTRADAY_VALUES

    con = duckdb.connect(str(db))
    con.execute(re.sub(r"USING COMPRESSION \w+", "", INTRADAY_VALUES.ddl))
    con.close()


def bulk(
    db: Path, rows: int, *, source: str = "quoted", codecs: str = "pinned"
) -> dict[str, object]:
    """Child process: load ``rows`` minute bars chunk by chunk (~290k rows each) through
    ``feeds.bulk.ingest_frames`` (the next chunk validated while this one lands).  ``source``:
    ``quoted`` or ``unrounded`` synthetic bars (``_symbol_bars``, a symbol a chunk), or ``real``
    (``_real_chunks``); ``codecs``: ``pinned`` (the store's) or ``automatic``
    (``_automatic_codecs``)."""
    from feeds.bulk import FrameLoad, ingest_frames
    from feeds.ingest import ingest_frame

    if codecs == "automatic":
        _automatic_codecs(db)

    if source == "real":
        chunk = _real_chunks()
    else:
        chunk = functools.partial(_symbol_bars, quoted=source == "quoted")
    gen_s = gen_cpu_s = 0.0

    def loads() -> Iterator[FrameLoad]:
        nonlocal gen_s, gen_cpu_s
        made, i = 0, 0
        while made < rows:
            t0, c0 = time.perf_counter(), time.thread_time()
            frame = chunk(i)
            frame = frame.head(int(min(frame.height, rows - made)))
            gen_s += time.perf_counter() - t0  # on this thread, between landings: not load time
            gen_cpu_s += time.thread_time() - c0
            yield FrameLoad(frame, f"bench://{i}", f"bench:{i}:{frame.height}")
            made += frame.height
            i += 1

    con = open_store(db)
    loaded = 0
    phases: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for rep in ingest_frames(con, loads()):
        assert rep.rows_quarantined == 0 and rep.rows_inserted == rep.rows_loaded
        for k, v in rep.seconds.items():
            phases[k] = phases.get(k, 0.0) + v
        loaded += rep.rows_inserted
    t1 = time.perf_counter()
    con.close()  # any checkpoint left for the close counts as load time
    load_s = time.perf_counter() - t0 - gen_s
    cpu_s = time.process_time() - c0 - gen_cpu_s
    phases["close"] = time.perf_counter() - t1
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    con = open_store(db)  # idempotency: the first chunk again inserts nothing
    again = ingest_frame(con, chunk(0), name="bench://again", key="bench:again")
    con.close()
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    return {
        "file_mib": db.stat().st_size / 2**20,
        "rows": loaded,
        "load_s": load_s,
        "cpu_s": cpu_s,
        "generate_s": gen_s,
        "peak_rss_mib": peak_mib,
        "phases": phases,
    }


def naive(db: Path, rows: int) -> dict[str, float]:
    """Row-by-row INSERT statements in one transaction (the approach to beat)."""
    con = open_store(db)
    con.execute(_STRING_TABLE.format(name="naive"))
    frame = _symbol_bars(999).head(rows).select(BAR_COLUMNS)
    records = frame.rows()
    cols = ", ".join(c for c in BAR_COLUMNS)
    marks = ", ".join("?" for _ in BAR_COLUMNS)
    t0 = time.perf_counter()
    with transaction(con):
        for r in records:
            con.execute(f"INSERT INTO naive ({cols}, ingested_at) VALUES ({marks}, now())", list(r))
    dt = time.perf_counter() - t0
    con.close()
    return {"rows": len(records), "load_s": dt}


def raw_append(db: Path, rows: int, *, series_id: bool) -> dict[str, float]:
    """Reference: the same bars appended with no key and no validation, one commit per chunk.

    ``series_id`` False: into a table with symbol, kind, frequency, source and the file's hash on
    every row (the store's layout before the series key); True: into the store's layout (series
    and batch ids: numbers only).
    """
    con = open_store(db)
    if series_id:
        con.execute(INTRADAY_VALUES.ddl.replace("intraday_values", "raw"))  # its codecs too
        cols = ["session", "ts", *VALUE_FIELDS]
        select = f"SELECT 1, {', '.join(cols)}, 1 FROM _f"
    else:
        con.execute(_STRING_TABLE.format(name="raw"))
        cols = list(BAR_COLUMNS)
        select = "SELECT *, 'sha', now() FROM _f"
    loaded, dt, i = 0, 0.0, 0
    while loaded < rows:
        frame = _symbol_bars(i).select(cols)
        frame = frame.head(int(min(frame.height, rows - loaded)))
        t0 = time.perf_counter()
        con.register("_f", frame.to_arrow())
        with transaction(con):
            con.execute(f"INSERT INTO raw {select}")
        con.execute("CHECKPOINT")
        dt += time.perf_counter() - t0
        con.unregister("_f")
        loaded += frame.height
        i += 1
    con.close()
    return {"rows": loaded, "load_s": dt}


def file_ingest(db: Path, rows: int, tmp: Path) -> dict[str, Any]:
    """One vendor CSV (the sina_index_1m layout) of ``rows`` bars through ``ingest_file``."""
    from feeds.ingest import ingest_file

    frame = _symbol_bars(0).head(rows)
    local = pl.col("ts").dt.convert_time_zone("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M:%S")
    csv = tmp / "sina_1m.csv"
    frame.select(local.alias("day"), "open", "high", "low", "close", "volume").write_csv(csv)
    con = open_store(db)
    t0 = time.perf_counter()
    rep = ingest_file(con, csv, profile="sina_index_1m", symbol="SYN000.SH")
    dt = time.perf_counter() - t0
    con.close()
    assert rep.rows_inserted == frame.height, rep
    return {"rows": frame.height, "load_s": dt, "phases": rep.seconds}


def read_five_years(db: Path) -> dict[str, float]:
    con = open_store(db, read_only=True)
    t0 = time.perf_counter()
    df = intraday_bars(con, "SYN000.SH", "1m", start=YEARS[0], end=YEARS[1])
    dt = time.perf_counter() - t0
    con.close()
    return {"rows": df.height, "read_s": dt}


def gap_accounting(symbols: int) -> dict[str, Any]:
    """``feeds.gaps.batch_gaps`` on ``symbols`` symbols' 1-minute bars in one batch, a bar
    missing from every fifth session, against the per-session path it replaced (for each short
    session, a filter of the whole batch and a walk along ``intraday_grid``: O(rows x short
    sessions)); both give the same first missing bars."""
    from feeds.calendar import intraday_grid
    from feeds.gaps import batch_gaps
    from feeds.schema import InstrumentKind

    holed = [
        _symbol_bars(i).with_row_index("_i").filter(pl.col("_i") % (240 * 5) != 100).drop("_i")
        for i in range(symbols)
    ]
    bars = pl.concat(holed)
    t0 = time.perf_counter()
    gaps = batch_gaps(bars)
    fast_s = time.perf_counter() - t0
    short = gaps.filter(pl.col("missing") > 0)
    t0 = time.perf_counter()
    firsts = []
    for symbol, freq, source, session in short.select(
        "symbol", "frequency", "source", "session"
    ).iter_rows():
        have = set(bars.filter(symbol=symbol, frequency=freq, source=source, session=session)["ts"])
        grid = intraday_grid(InstrumentKind.INDEX, session, int(freq.rstrip("m")))
        firsts.append(next((g for g in grid if g not in have), None))
    naive_s = time.perf_counter() - t0
    assert firsts == short["first_missing"].to_list()
    return {"rows": bars.height, "short": short.height, "fast_s": fast_s, "naive_s": naive_s}


def _child(
    db: Path, rows: int, *, source: str = "quoted", codecs: str = "pinned"
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_ingest", "--child", str(db), "--rows", str(rows)]
    cmd += ["--source", source, "--codecs", codecs]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks ingest", description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--naive-rows", type=int, default=20_000)
    ap.add_argument("--raw-rows", type=int, default=2_000_000, help="rows of each append reference")
    ap.add_argument("--file-rows", type=int, default=292_560, help="rows of the vendor CSV")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--source", default="quoted", help=argparse.SUPPRESS)
    ap.add_argument("--codecs", default="pinned", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(bulk(Path(args.child), args.rows, source=args.source, codecs=args.codecs)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        b = _child(db, args.rows)
        load = load_average()
        auto = _child(Path(tmp) / "automatic.duckdb", args.rows, codecs="automatic")
        u = _child(Path(tmp) / "unrounded.duckdb", args.rows, source="unrounded")
        u_auto = _child(
            Path(tmp) / "unrounded_auto.duckdb", args.rows, source="unrounded", codecs="automatic"
        )
        real = (
            _child(Path(tmp) / "real.duckdb", args.rows, source="real")
            if REAL_1M.exists()
            else None
        )
        rd = read_five_years(db)
        gap = gap_accounting(2)
        raw_rows = min(args.rows, args.raw_rows)
        raw_str = raw_append(Path(tmp) / "raw_str.duckdb", raw_rows, series_id=False)
        raw_id = raw_append(Path(tmp) / "raw_id.duckdb", raw_rows, series_id=True)
        f = file_ingest(Path(tmp) / "file.duckdb", args.file_rows, Path(tmp))
        n = naive(Path(tmp) / "naive.duckdb", args.naive_rows)
    bulk_rps = b["rows"] / b["load_s"]
    unrounded_rps = u["rows"] / u["load_s"]
    auto_rps = auto["rows"] / auto["load_s"]
    u_auto_rps = u_auto["rows"] / u_auto["load_s"]
    real_rps = real["rows"] / real["load_s"] if real is not None else None
    naive_rps = n["rows"] / n["load_s"]
    raw_rps = raw_str["rows"] / raw_str["load_s"]
    raw_id_rps = raw_id["rows"] / raw_id["load_s"]
    file_rps = f["rows"] / f["load_s"]
    print(f"machine: {load} (at the end of the bulk run)")
    print(f"{'path':<50} {'rows':>11} {'seconds':>9} {'rows/s':>12} {'ratio':>8}")
    table = [
        ("bulk ingest (validate, key check, insert)", b["rows"], b["load_s"], bulk_rps),
        ("same, DuckDB choosing every codec", auto["rows"], auto["load_s"], auto_rps),
        ("same, prices as unrounded floats", u["rows"], u["load_s"], unrounded_rps),
        (
            "same, unrounded, DuckDB choosing every codec",
            u_auto["rows"],
            u_auto["load_s"],
            u_auto_rps,
        ),
        *([(REAL_ROW, real["rows"], real["load_s"], real_rps)] if real is not None else []),
        ("vendor CSV through ingest_file (parse too)", f["rows"], f["load_s"], file_rps),
        (
            "ref: Arrow append, series spelled out, no checks",
            raw_str["rows"],
            raw_str["load_s"],
            raw_rps,
        ),
        ("ref: Arrow append, series id, no checks", raw_id["rows"], raw_id["load_s"], raw_id_rps),
        ("naive row-by-row INSERT", n["rows"], n["load_s"], naive_rps),
    ]
    if real is None:
        print(f"{REAL_ROW}: skipped ({REAL_1M} is absent)")
    for name, rows, secs, rps in table:
        print(f"{name:<50} {rows:>11,.0f} {secs:>9.2f} {rps:>12,.0f} {rps / naive_rps:>7.0f}x")
    print(
        f"{'read 5y of 1m bars, one symbol (polars)':<50} {rd['rows']:>11,.0f} "
        f"{rd['read_s']:>9.2f} {rd['rows'] / rd['read_s']:>12,.0f}"
    )
    print(
        f"bulk ingest CPU time {b['cpu_s']:.1f} s (all threads) for {b['load_s']:.1f} s wall: "
        f"{b['rows'] / b['cpu_s']:,.0f} rows per CPU-second"
    )
    total = sum(b["phases"].values())
    print("bulk ingest, where the time goes (parse is 0: the bars arrive as frames):")
    for k, v in b["phases"].items():
        print(f"  {k:<10} {v:>8.2f} s  {v / total:>6.1%}")
    print(
        f"session gaps of one batch, {gap['rows']:,} bars, {gap['short']:,} sessions short of a "
        f"bar: batch_gaps {gap['fast_s']:.3f} s, per-session loop {gap['naive_s']:.2f} s "
        f"({gap['naive_s'] / gap['fast_s']:.0f}x)"
    )
    print(f"vendor CSV, where the time goes ({f['rows']:,} rows):")
    for k, v in f["phases"].items():
        print(f"  {k:<10} {v:>8.2f} s")
    print(
        "store file after each bulk load, MiB (pinned codecs / DuckDB choosing): quoted "
        f"{b['file_mib']:,.0f} / {auto['file_mib']:,.0f}, unrounded {u['file_mib']:,.0f} / "
        f"{u_auto['file_mib']:,.0f}"
        + (f", real {real['file_mib']:,.0f} / -" if real is not None else "")
    )
    print(
        f"bulk child peak RSS: {b['peak_rss_mib']:,.0f} MiB (includes generating the bars, "
        f"{b['generate_s']:.1f} s, not counted in the load time); re-ingesting the first chunk "
        "inserted nothing"
    )
    sys.stdout.flush()
    write_json(
        args.json,
        {
            "benchmark": "ingest",
            "bulk_rows_per_s": bulk_rps,
            "bulk_unrounded_rows_per_s": unrounded_rps,
            "bulk_automatic_codecs_rows_per_s": auto_rps,
            "bulk_unrounded_automatic_codecs_rows_per_s": u_auto_rps,
            "file_mib": {
                "quoted": b["file_mib"],
                "quoted_automatic": auto["file_mib"],
                "unrounded": u["file_mib"],
                "unrounded_automatic": u_auto["file_mib"],
                "real": None if real is None else real["file_mib"],
            },
            "bulk_unrounded_peak_rss_mib": u["peak_rss_mib"],
            "bulk_real_rows_per_s": real_rps,
            "naive_rows_per_s": naive_rps,
            "peak_rss_mib": b["peak_rss_mib"],
            "rows": b["rows"],
            "bulk_cpu_s": b["cpu_s"],
            "bulk_rows_per_cpu_s": b["rows"] / b["cpu_s"],
            "file_rows_per_s": file_rps,
            "gap_accounting_s": gap["fast_s"],
            "gap_accounting_naive_s": gap["naive_s"],
            "file_phases_s": f["phases"],
            "raw_append_rows_per_s": raw_rps,
            "raw_append_series_id_rows_per_s": raw_id_rps,
            "phases_s": b["phases"],
            "load_at_measurement": load,
        },
    )


if __name__ == "__main__":
    main(sys.argv[1:])
