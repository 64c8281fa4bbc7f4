"""A vendor's drop folder: files that are complete are ingested, then archived by their status.

A file is taken only when it is complete: unmodified for ``settle_s`` seconds (a file still being
written keeps changing), and, when ``marker_suffix`` is set, only once the vendor's completion
marker ``<file><suffix>`` exists.  Each taken file is ingested in one transaction (idempotent by
content hash, so the same file dropped again changes nothing) and then moved to
``archive/<status>/<UTC stamp>_<name>`` (status ``ingested``, ``unchanged`` or ``failed``) with
a ``.json`` note of what happened; stored rows point at the archived path.  A crash between
the ingest and the move leaves the file in the inbox; the next scan finds its content already
ingested and archives it as ``unchanged``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from feeds.ingest import INGESTIBLE_SUFFIXES, IngestError, ingest_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboxItem:
    """What became of one file of the inbox."""

    name: str
    status: str  # ingested | unchanged | failed | not_ready
    archived_to: str | None = None
    rows_loaded: int = 0
    rows_quarantined: int = 0
    detail: str = ""


def _candidates(directory: Path, marker_suffix: str | None) -> list[Path]:
    files = sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and p.suffix.lower() in INGESTIBLE_SUFFIXES
        and not p.name.startswith(".")
        and not (marker_suffix and p.name.endswith(marker_suffix))
    )
    return files


def _ready(p: Path, settle_s: float, marker_suffix: str | None, now: float) -> str | None:
    """None when ``p`` may be taken, else why not."""
    if marker_suffix and not p.with_name(p.name + marker_suffix).exists():
        return f"waiting for the completion marker {p.name}{marker_suffix}"
    age = now - p.stat().st_mtime
    if age < settle_s:
        return f"modified {age:.1f}s ago (< {settle_s:g}s): may still be being written"
    return None


def _archive(p: Path, dest: Path, note: Mapping[str, object], marker: str | None) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(p, dest)
    if marker:
        m = p.with_name(p.name + marker)
        if m.exists():
            os.replace(m, dest.with_name(dest.name + marker))
    dest.with_name(dest.name + ".json").write_text(json.dumps(note, indent=2), encoding="utf-8")
    return dest


def scan_inbox(
    con: duckdb.DuckDBPyConnection,
    directory: Path,
    *,
    archive: Path | None = None,
    profile: str | None = None,
    symbol: str | None = None,
    settle_s: float = 10.0,
    marker_suffix: str | None = None,
    clock: Callable[[], float] = time.time,
) -> list[InboxItem]:
    """Ingest and archive every complete file in ``directory``; report each file seen."""
    if not directory.is_dir():
        raise IngestError(f"inbox {directory}: not a directory")
    arch = archive or directory / "archive"
    out: list[InboxItem] = []
    for p in _candidates(directory, marker_suffix):
        why = _ready(p, settle_s, marker_suffix, clock())
        if why is not None:
            log.info("inbox %s: %s not taken yet (%s)", directory, p.name, why)
            out.append(InboxItem(p.name, "not_ready", detail=why))
            continue
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = {s: arch / s / f"{stamp}_{p.name}" for s in ("ingested", "unchanged", "failed")}
        try:
            # Rows point at the file where it will lie once archived.
            r = ingest_file(
                con, p, profile=profile, symbol=symbol, recorded_as=str(target["ingested"])
            )
        except (IngestError, KeyError) as exc:
            note = {
                "status": "failed",
                "error": str(exc),
                "taken_at": datetime.now(UTC).isoformat(),
            }
            dest = _archive(p, target["failed"], note, marker_suffix)
            log.error(
                "inbox %s: %s failed and was archived to %s: %s", directory, p.name, dest, exc
            )
            out.append(InboxItem(p.name, "failed", str(dest), detail=str(exc)))
            continue
        note = {**asdict(r), "taken_at": datetime.now(UTC).isoformat()}
        dest = _archive(p, target[r.status], note, marker_suffix)
        log.info("inbox %s: %s %s, archived to %s", directory, p.name, r.status, dest)
        out.append(InboxItem(p.name, r.status, str(dest), r.rows_loaded, r.rows_quarantined))
    return out
