"""The ingest step's feeds: every configured ``[[feeds]]`` entry, run for the run date.

Each feed reports what arrived (files taken from an inbox, bars from an adapter) or its error;
a feed error never leaves a half-written batch (every load is one transaction) and makes the
day wait and retry rather than fail (``quant.pipeline`` turns it into ``waiting_for_data``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from feeds.adapters import fetch_and_ingest
from feeds.inbox import scan_inbox
from feeds.parse import IngestError
from feeds.vendor import FeedError, FetchPolicy
from quant.config import QuantConfig
from quant.settings_feeds import AdapterFeed, InboxFeed

log = logging.getLogger(__name__)


def fetched_dir(cfg: QuantConfig) -> Path:
    """Where adapter fetches are kept as CSV (every stored row points at a file and line)."""
    return Path(cfg.store.path).parent / "fetched"


def run_inbox(con: duckdb.DuckDBPyConnection, f: InboxFeed) -> dict[str, Any]:
    items = scan_inbox(
        con,
        f.directory,
        archive=f.archive,
        profile=f.profile,
        symbol=f.symbol,
        settle_s=f.settle_s,
        marker_suffix=f.marker_suffix,
    )
    counts = {s: sum(i.status == s for i in items) for s in ("ingested", "unchanged", "failed")}
    waiting = [i.name for i in items if i.status == "not_ready"]
    return {"kind": "inbox", **counts, "not_ready": waiting, "files": [asdict(i) for i in items]}


def run_adapter(
    con: duckdb.DuckDBPyConnection, cfg: QuantConfig, f: AdapterFeed, d: date, vendor: Any
) -> dict[str, Any]:
    r = fetch_and_ingest(
        con,
        f.adapter,
        f.symbol,
        d,
        d,
        keep_dir=fetched_dir(cfg),
        vendor=vendor,
        policy=FetchPolicy(f.timeout_s, f.retries, f.backoff_s),
        main_by=f.main_by,
    )
    return {
        "kind": "adapter",
        "status": r.status,
        "rows_loaded": r.rows_loaded,
        "rows_quarantined": r.rows_quarantined,
        "path": r.path,
    }


def run_feeds(
    con: duckdb.DuckDBPyConnection, cfg: QuantConfig, d: date, *, vendor: Any = None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(what each feed brought for ``d``, the feed errors); every feed runs even if one fails."""
    out: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for i, f in enumerate(cfg.feeds):
        label = f.name if isinstance(f, InboxFeed) else f.label
        if label in out:
            label = f"{label}#{i}"
        try:
            if isinstance(f, InboxFeed):
                out[label] = run_inbox(con, f)
            else:
                out[label] = run_adapter(con, cfg, f, d, vendor)
        except (FeedError, IngestError, KeyError) as exc:
            msg = f"feed {label}: {exc}"
            log.error("%s %s", d, msg)
            out[label] = {"kind": f.kind, "status": "error", "error": str(exc)}
            errors.append(msg)
    return out, errors
