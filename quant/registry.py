"""Model registry: versions with lineage and hashes in DuckDB, weights files beside the store.

- ``model_versions``: one row per trained model (id, parent, config hash, training window,
  metrics, sha256 of the weights file, file name relative to the models directory).
- ``model_champion``: append-only history of the champion pointer; the newest row is the
  champion.  Promotion, rollback and fallback each insert one row in one transaction.
- ``model_training_data``: the sessions each version trained on (``recent``/``replay``/``scratch``).

Weights are written atomically (temporary file, fsync, rename, fsync of the directory) BEFORE
the version row is committed, so a committed row always names a complete file; a crash between
the two leaves an orphan file, never a row without weights.  ``load_verified`` re-hashes the file.
Readers (API, notebooks) call these functions on a published snapshot connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from feeds.durable import file_sha256, place
from feeds.schema import create_tables
from feeds.store import transaction
from models import checkpoint
from models.forecaster import Forecaster
from quant.schema import REGISTRY_TABLES

log = logging.getLogger(__name__)

_COLS = (
    "version_id, parent_id, config_hash, train_start, train_end, metrics, sha256, path, created_at"
)


class RegistryError(RuntimeError):
    """No usable model: unknown version, missing or corrupt weights, empty registry."""


@dataclass(frozen=True)
class ModelVersion:
    version_id: str
    parent_id: str | None
    config_hash: str
    train_start: date
    train_end: date
    metrics: dict[str, Any]
    sha256: str
    path: str  # relative to the models directory
    created_at: datetime  # tz-aware (UTC)
    kind: str = field(default="finetune")

    def as_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "parent_id": self.parent_id,
            "kind": self.kind,
            "config_hash": self.config_hash,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "metrics": self.metrics,
            "sha256": self.sha256,
            "path": self.path,
            "created_at": self.created_at.isoformat(),
        }


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    n = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name IN ('model_versions', 'model_champion')"
    ).fetchall()[0][0]
    return int(n) == 2


def _row(r: tuple[Any, ...], kind: str) -> ModelVersion:
    created = r[8] if r[8].tzinfo is not None else r[8].replace(tzinfo=UTC)
    return ModelVersion(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], created, kind)


def get_version(con: duckdb.DuckDBPyConnection, version_id: str) -> ModelVersion:
    """The version ``version_id`` (``RegistryError`` if unknown)."""
    rows = (
        con.execute(
            f"SELECT {_COLS}, kind FROM model_versions WHERE version_id = ?", [version_id]
        ).fetchall()
        if _has_tables(con)
        else []
    )
    if not rows:
        raise RegistryError(f"unknown model version {version_id!r}")
    return _row(rows[0][:9], rows[0][9])


def list_versions(con: duckdb.DuckDBPyConnection) -> list[ModelVersion]:
    """Every version, oldest first."""
    if not _has_tables(con):
        return []
    rows = con.execute(
        f"SELECT {_COLS}, kind FROM model_versions ORDER BY created_at, version_id"
    ).fetchall()
    return [_row(r[:9], r[9]) for r in rows]


def champion_history(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The champion pointer's history, newest first."""
    if not _has_tables(con):
        return []
    rows = con.execute(
        "SELECT seq, version_id, previous_id, action, reason, changed_at "
        "FROM model_champion ORDER BY seq DESC"
    ).fetchall()
    keys = ("seq", "version_id", "previous_id", "action", "reason", "changed_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def champion(con: duckdb.DuckDBPyConnection) -> ModelVersion | None:
    """The current champion (None when nothing was ever promoted)."""
    hist = champion_history(con)
    return get_version(con, hist[0]["version_id"]) if hist else None


def config_hash(parts: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of what defines a model (config, features, training)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def new_version_id(now: datetime | None = None) -> str:
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return f"v{t:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def write_weights(fc: Forecaster, models_dir: Path, version_id: str) -> tuple[str, str]:
    """Save ``fc`` atomically as ``<models_dir>/<version_id>.pt``; returns (file name, sha256)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    name = f"{version_id}.pt"
    tmp = models_dir / f".{name}.tmp-{os.getpid()}"
    checkpoint.save(tmp, fc.checkpoint(version_id=version_id))
    sha = file_sha256(tmp)
    place(tmp, models_dir / name)
    return name, sha


def sweep_temporary(models_dir: Path) -> list[Path]:
    """Delete half-written weights left by a killed writer (call only while holding the lock)."""
    if not models_dir.is_dir():
        return []
    stale = list(models_dir.glob(".*.pt.tmp-*"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def insert_version(
    con: duckdb.DuckDBPyConnection,
    v: ModelVersion,
    training: dict[str, list[date]] | None = None,
) -> None:
    """Insert the version row (and what it trained on); the caller owns the transaction."""
    create_tables(con, REGISTRY_TABLES)
    con.execute(
        "INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            v.version_id,
            v.parent_id,
            v.kind,
            v.config_hash,
            v.train_start,
            v.train_end,
            json.dumps(v.metrics, sort_keys=True, default=str),
            v.sha256,
            v.path,
            v.created_at,
        ],
    ).fetchall()
    rows = [(v.version_id, s, role) for role, ss in (training or {}).items() for s in ss]
    if rows:
        con.executemany("INSERT INTO model_training_data VALUES (?, ?, ?)", rows)


def set_champion(
    con: duckdb.DuckDBPyConnection, version_id: str, *, action: str, reason: str
) -> None:
    """Point the champion at ``version_id`` (one row); the caller owns the transaction."""
    create_tables(con, REGISTRY_TABLES)
    get_version(con, version_id)
    cur = champion(con)
    seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM model_champion").fetchall()[0][0]
    con.execute(
        "INSERT INTO model_champion VALUES (?, ?, ?, ?, ?, ?)",
        [seq, version_id, cur.version_id if cur else None, action, reason, datetime.now(UTC)],
    ).fetchall()


def register(
    con: duckdb.DuckDBPyConnection,
    fc: Forecaster,
    models_dir: Path,
    *,
    parent_id: str | None,
    kind: str,
    cfg_hash: str,
    train_start: date,
    train_end: date,
    metrics: dict[str, Any],
    training: dict[str, list[date]] | None = None,
    promote_reason: str | None = None,
) -> ModelVersion:
    """Write weights, then insert the version (and, if asked, make it champion) in one commit."""
    vid = new_version_id()
    path, sha = write_weights(fc, models_dir, vid)
    v = ModelVersion(
        vid,
        parent_id,
        cfg_hash,
        train_start,
        train_end,
        metrics,
        sha,
        path,
        datetime.now(UTC),
        kind,
    )
    with transaction(con):
        insert_version(con, v, training)
        if promote_reason is not None:
            set_champion(con, vid, action="initial", reason=promote_reason)
    return v


def load_verified(version: ModelVersion, models_dir: str | Path) -> Forecaster:
    """Load the weights of ``version`` after checking their sha256 (``RegistryError`` if not)."""
    p = Path(models_dir) / version.path
    if not p.is_file():
        raise RegistryError(f"weights of {version.version_id} missing: {p}")
    got = file_sha256(p)
    if got != version.sha256:
        raise RegistryError(
            f"weights of {version.version_id} fail verification: sha256 {got[:12]}... "
            f"!= registered {version.sha256[:12]}..."
        )
    try:
        return Forecaster.from_checkpoint(p)
    except checkpoint.CheckpointError as exc:
        raise RegistryError(f"weights of {version.version_id} unreadable: {exc}") from exc


def load_champion(
    con: duckdb.DuckDBPyConnection, models_dir: str | Path
) -> tuple[ModelVersion, Forecaster]:
    """The champion and its model; if its weights are missing or corrupt, the previous champion
    that verifies (logged).  Read-only: the writer records a fallback with ``repair_champion``."""
    seen: set[str] = set()
    errors: list[str] = []
    for h in champion_history(con):
        vid = h["version_id"]
        if vid in seen:
            continue
        seen.add(vid)
        v = get_version(con, vid)
        try:
            return v, load_verified(v, models_dir)
        except RegistryError as exc:
            log.warning("champion candidate %s unusable (%s); trying the previous one", vid, exc)
            errors.append(str(exc))
    raise RegistryError(
        "no champion with verified weights" + (": " + "; ".join(errors) if errors else "")
    )


def repair_champion(
    con: duckdb.DuckDBPyConnection, models_dir: Path
) -> tuple[ModelVersion, Forecaster] | None:
    """Writer side of ``load_champion``: record a fallback row when the champion is unusable."""
    cur = champion(con)
    if cur is None:
        return None
    v, fc = load_champion(con, models_dir)
    if v.version_id != cur.version_id:
        with transaction(con):
            set_champion(
                con,
                v.version_id,
                action="fallback",
                reason=f"weights of {cur.version_id} missing or failed verification",
            )
    return v, fc


def rollback(con: duckdb.DuckDBPyConnection, reason: str) -> ModelVersion:
    """Make the most recent champion other than the current one champion again
    (``RegistryError`` if there is none)."""
    hist = champion_history(con)
    others = [h["version_id"] for h in hist[1:] if h["version_id"] != hist[0]["version_id"]]
    if not others:
        raise RegistryError("no previous champion to roll back to")
    target = others[0]
    with transaction(con):
        set_champion(con, target, action="rollback", reason=reason)
    return get_version(con, target)


def promote(con: duckdb.DuckDBPyConnection, version_id: str, reason: str) -> ModelVersion:
    """Make ``version_id`` champion by hand."""
    with transaction(con):
        set_champion(con, version_id, action="promote", reason=reason)
    return get_version(con, version_id)
