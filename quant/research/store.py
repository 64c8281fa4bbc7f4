"""Opening the market store for research: read-only, the published snapshot first.

Readers never take the write lock: the snapshot ``<store>.snapshot.duckdb`` is opened when it
exists, else the store itself read-only.  When neither exists (a fresh clone without
``make run``) an in-memory store with the seeded SYNTHETIC market stands in, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from feeds.ingest import ingest_synthetic
from feeds.snapshot import open_snapshot, snapshot_path
from feeds.store import StoreError, open_store
from feeds.synthetic import SYNTHETIC_SOURCE
from quant.config import QuantConfig


def project_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding ``pyproject.toml``."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").exists():
            return d
    return here


def resolve_store(path: str | Path) -> Path:
    """A relative store path is taken from cwd if it exists there, else from the project root.

    Jupyter starts kernels in the notebook's folder; the test runs them from the repository root.
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists() or snapshot_path(p).exists():
        return p
    return project_root() / p


def has_real_bars(con: duckdb.DuckDBPyConnection) -> bool:
    """True when any daily bar comes from a real vendor (not the synthetic market)."""
    n = con.execute(
        "SELECT count(*) FROM bars_daily WHERE source <> ?", [SYNTHETIC_SOURCE]
    ).fetchall()[0][0]
    return bool(n)


def research_symbol(con: duckdb.DuckDBPyConnection, cfg: QuantConfig) -> str:
    """``data.symbol`` when the store holds its daily bars, else the synthetic market's symbol."""
    d = cfg.data
    n = con.execute("SELECT count(*) FROM bars_daily WHERE symbol = ?", [d.symbol]).fetchall()
    return d.symbol if n[0][0] else d.synthetic_symbol


@dataclass
class ResearchStore:
    con: duckdb.DuckDBPyConnection
    path: Path  # the store asked for
    opened: str  # the file actually opened, or ":memory:"
    real: bool  # real vendor bars are present (else only the synthetic market)
    note: str

    def close(self) -> None:
        self.con.close()


def synthetic_stand_in(cfg: QuantConfig, *, small: bool) -> duckdb.DuckDBPyConnection:
    """An in-memory store holding the seeded synthetic market (shorter when ``small``)."""
    d = cfg.data
    end = d.synthetic_end
    start = end - timedelta(days=730) if small else d.synthetic_start
    con = open_store(":memory:")
    ingest_synthetic(
        con,
        start=start,
        end=end,
        seed=d.synthetic_seed,
        minute_sessions=250 if small else d.synthetic_minute_sessions,
    )
    return con


def _published(snap: Path) -> str:
    at = datetime.fromtimestamp(snap.stat().st_mtime, UTC)
    return f"snapshot published {at:%Y-%m-%d %H:%M} UTC"


def _connect(
    path: Path, cfg: QuantConfig, *, small: bool, prefer_store: bool
) -> tuple[duckdb.DuckDBPyConnection, str, str]:
    snap = snapshot_path(path)
    if path.exists() and (prefer_store or not snap.exists()):
        try:
            return open_store(path, read_only=True), str(path), "store, read-only"
        except StoreError:  # a writer holds the store: read its snapshot
            if not snap.exists():
                raise
    if snap.exists():
        return open_snapshot(path), str(snap), _published(snap)
    how = f"no store at {path}: an in-memory SYNTHETIC market stands in"
    return synthetic_stand_in(cfg, small=small), ":memory:", how


def open_store_readonly(
    store: str | Path, cfg: QuantConfig, *, small: bool = False, prefer_store: bool = False
) -> ResearchStore:
    """Open ``store`` for reading: its snapshot, else the file, else a synthetic stand-in of
    ``cfg.data``'s synthetic market.

    A connection held across notebook cells reads the snapshot, so that it never blocks the
    writer.  ``prefer_store`` reads the store file itself unless a writer holds it (fresher; for
    reads that close at once), and the snapshot when one does.
    """
    path = resolve_store(store)
    con, opened, how = _connect(path, cfg, small=small, prefer_store=prefer_store)
    real = has_real_bars(con)
    data = (
        "real vendor bars present"
        if real
        else "no real vendor bars: every figure below is the SYNTHETIC market"
    )
    return ResearchStore(con, path, opened, real, f"opened {opened} ({how}); {data}")
