"""Bulk ingest: many files or frames, the next one read and validated while this one lands.

Reading and validating (``feeds.ingest.prepare_file`` / ``prepare_frame``: polars, no store
access) runs on one worker thread, ahead of the store writes (``feeds.ingest.land``: DuckDB, on
the caller's thread and connection).  Both release the GIL for their heavy work, so the two use
both cores.  Nothing about landing changes: each file or frame still lands whole in its own
transaction, in the order given, with its quarantine rows; an unreadable file is reported as an
error and the others go on.  At most one item is prepared ahead, so memory stays at two items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from feeds.ingest import IngestError, IngestReport, Prepared, land, prepare_file, prepare_frame

T = TypeVar("T")


@dataclass(frozen=True)
class FileResult:
    """One file of ``ingest_files``: its report, or why it could not be read."""

    path: Path
    report: IngestReport | None
    error: Exception | None = None


def _ahead(
    items: Iterable[T], prepare: Callable[[T], Prepared]
) -> Iterator[tuple[T, Future[Prepared]]]:
    """Each item with its preparation, the next one's already running on the worker thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-prepare") as pool:
        it = iter(items)
        pending: tuple[T, Future[Prepared]] | None = None
        for item in it:
            nxt = (item, pool.submit(prepare, item))
            if pending is not None:
                yield pending
            pending = nxt
        if pending is not None:
            yield pending


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    *,
    profile: str | None = None,
    symbol: str | None = None,
) -> Iterator[FileResult]:
    """``feeds.ingest.ingest_file`` for each of ``paths`` in order, reading ahead."""

    def prepare(path: Path) -> Prepared:
        return prepare_file(path, profile=profile, symbol=symbol)

    for path, prepared in _ahead(paths, prepare):
        try:
            prep = prepared.result()
        except (IngestError, KeyError) as exc:
            yield FileResult(path, None, exc)
            continue
        yield FileResult(path, land(con, prep))


@dataclass(frozen=True)
class FrameLoad:
    """One in-memory frame for ``ingest_frames`` (``feeds.ingest.prepare_frame``'s arguments)."""

    bars: pl.DataFrame
    name: str
    key: str
    profile: str = "frame"


def ingest_frames(
    con: duckdb.DuckDBPyConnection, loads: Iterable[FrameLoad]
) -> Iterator[IngestReport]:
    """``feeds.ingest.ingest_frame`` for each of ``loads`` in order, validating ahead."""

    def prepare(load: FrameLoad) -> Prepared:
        return prepare_frame(load.bars, name=load.name, key=load.key, profile=load.profile)

    for _, prepared in _ahead(loads, prepare):
        yield land(con, prepared.result())
