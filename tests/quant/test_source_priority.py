"""No bar read in the service falls back to a built-in source priority.

Every read in ``quant/`` either names its source or passes ``store.source_priority`` (directly, or
through the ``feeds.store.Store`` handle's ``BarReader``); the default of ``feeds.read`` is for
tools and tests only.  A new call that leaves both out fails here, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import polars as pl

from feeds.read import BarReader
from feeds.store import Store, open_store
from quant.config import load_config

READS = {"daily_bars", "intraday_bars", "load_daily", "load_intraday", "resolve_source"}
ROOT = Path(__file__).resolve().parents[2]


def _name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _bypasses(call: ast.Call) -> bool:
    kws = {k.arg for k in call.keywords}
    if kws & {"priority", "source"} or None in kws:  # None: **kwargs
        return False
    return not (_name(call) == "resolve_source" and len(call.args) >= 4)


def test_every_bar_read_in_quant_follows_the_configured_priority() -> None:
    offenders = []
    for path in sorted((ROOT / "quant").rglob("*.py")):
        if path.name == "demo.py":  # the API's fixture store: synthetic bars, one source only
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _name(node) in READS and _bypasses(node):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {_name(node)}")
    assert not offenders, "reads without source or priority:\n" + "\n".join(offenders)


def _bars(source: str, close: float) -> pl.DataFrame:
    from datetime import UTC, date, datetime

    return pl.DataFrame(
        {
            "symbol": ["X.SH"],
            "kind": ["index"],
            "source": [source],
            "session": [date(2024, 1, 2)],
            "ts": [datetime(2024, 1, 2, 7, 0, tzinfo=UTC)],
            "open": [close],
            "high": [close],
            "low": [close],
            "close": [close],
            "volume": [1.0],
            "amount": [1.0],
            "open_interest": [None],
            "ingested_at": [datetime(2024, 1, 2, 8, 0, tzinfo=UTC)],
        }
    )


def test_store_handle_reads_in_its_priority_and_writes_under_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "q.duckdb"
    con = open_store(path)
    for src, close in (("wind", 1.0), ("eastmoney", 2.0)):
        con.register("_b", _bars(src, close).to_arrow())
        con.execute(
            "INSERT INTO bars_daily (symbol, kind, source, session, ts, open, high, low, close, "
            "volume, amount, open_interest, ingested_at) SELECT * FROM _b"
        )
        con.unregister("_b")
    con.close()
    cfg = load_config(env={}, overrides={"store": {"path": str(path)}})
    assert cfg.store.handle() == Store(path, cfg.store.source_priority, None)
    with cfg.store.handle().read() as db:
        assert isinstance(db, BarReader)
        assert db.daily("X.SH")["source"].to_list() == ["wind"]  # the default priority
    prefer = Store(path, ("eastmoney", "wind"))
    with prefer.read() as db:
        assert db.daily("X.SH")["close"].to_list() == [2.0]
        assert db.source("X.SH", "1d") == "eastmoney"
    lock = path.with_name(path.name + ".lock")
    with prefer.write("test") as db:
        assert "pid" in lock.read_text() and "test" in lock.read_text()
        with prefer.write("nested, same process"):  # re-entrant
            pass
        db.con.execute("SELECT 1").fetchall()
