"""Shared fixtures for the market-store tests: tiny vendor files, stores, the real-data store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from feeds.ingest import IngestReport, expand_paths, ingest_file, ingest_synthetic
from feeds.store import open_store
from tests.feeds.helpers import REAL


@pytest.fixture
def store() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory store."""
    con = open_store(":memory:")
    yield con
    con.close()


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write ``lines`` (header first) to ``tmp_path/name``; returns the path."""

    def _write(name: str, lines: list[str], *, encoding: str = "utf-8", eol: str = "\n") -> Path:
        p = tmp_path / name
        p.write_bytes(eol.join(lines).encode(encoding) + eol.encode())
        return p

    return _write


@pytest.fixture(scope="session")
def synthetic_store() -> Iterator[duckdb.DuckDBPyConnection]:
    """The seeded SYNTHETIC market for Q1 2024: daily bars plus 1m bars for the last 5 sessions."""
    con = open_store(":memory:")
    ingest_synthetic(con, start=date(2024, 1, 2), end=date(2024, 3, 29), seed=11, minute_sessions=5)
    yield con
    con.close()


@pytest.fixture(scope="session")
def real_ingest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, IngestReport]]:
    """Ingest every real file ONCE per session into a tmp file store; (store path, reports)."""
    if not REAL.exists():
        pytest.skip(f"real data dir ../shared/data/real absent ({REAL})")
    path = tmp_path_factory.mktemp("real") / "real.duckdb"
    con = open_store(path)
    try:
        reports = {f.name: ingest_file(con, f) for f in expand_paths([REAL])}
    finally:
        con.close()
    return path, reports


@pytest.fixture(scope="session")
def real_store(
    real_ingest: tuple[Path, dict[str, IngestReport]],
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only connection to the real-data store."""
    con = open_store(real_ingest[0], read_only=True)
    yield con
    con.close()
