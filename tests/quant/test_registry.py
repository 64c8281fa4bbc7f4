"""Model registry: atomic weights, hash verification, champion pointer, fallback, rollback."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from feeds.store import open_store, transaction
from quant import registry
from tests.quant.conftest import tiny_forecaster


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return open_store(tmp_path / "r.duckdb")


def _register(
    con: duckdb.DuckDBPyConnection, mdir: Path, seed: int, parent: str | None, promote: bool
) -> registry.ModelVersion:
    v = registry.register(
        con,
        tiny_forecaster(seed),
        mdir,
        parent_id=parent,
        kind="initial" if parent is None else "finetune",
        cfg_hash=registry.config_hash({"seed": seed}),
        train_start=date(2021, 1, 4),
        train_end=date(2022, 6, 30),
        metrics={"seed": seed},
    )
    if promote:
        with transaction(con):
            registry.set_champion(con, v.version_id, action="promote", reason=f"seed {seed}")
    return v


def test_register_writes_verified_weights_and_metadata(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    mdir = tmp_path / "models"
    v = _register(con, mdir, 1, None, promote=True)
    assert registry.champion(con) == v
    assert [x.version_id for x in registry.list_versions(con)] == [v.version_id]
    assert v.created_at.tzinfo is not None and v.metrics == {"seed": 1}
    assert registry.file_sha256(mdir / v.path) == v.sha256
    assert list(mdir.iterdir()) == [mdir / v.path]  # no temporary file left behind
    fc = registry.load_verified(v, mdir)
    ref = tiny_forecaster(1)
    for k, t in ref.model.state_dict().items():
        assert fc.model.state_dict()[k].equal(t)


def test_load_verified_rejects_altered_and_missing_weights(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    mdir = tmp_path / "models"
    v = _register(con, mdir, 1, None, promote=True)
    f = mdir / v.path
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(registry.RegistryError, match="fail verification"):
        registry.load_verified(v, mdir)
    f.unlink()
    with pytest.raises(registry.RegistryError, match="missing"):
        registry.load_verified(v, mdir)


def test_corrupt_champion_falls_back_to_previous(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    mdir = tmp_path / "models"
    old = _register(con, mdir, 1, None, promote=True)
    new = _register(con, mdir, 2, old.version_id, promote=True)
    (mdir / new.path).write_bytes(b"not a checkpoint")
    v, _ = registry.load_champion(con, mdir)
    assert v.version_id == old.version_id
    assert registry.champion(con) == new  # readers never write
    got = registry.repair_champion(con, mdir)
    assert got is not None and got[0].version_id == old.version_id
    hist = registry.champion_history(con)
    assert (hist[0]["version_id"], hist[0]["action"]) == (old.version_id, "fallback")
    (mdir / old.path).unlink()
    with pytest.raises(registry.RegistryError, match="no champion with verified weights"):
        registry.load_champion(con, mdir)


def test_rollback_and_promote_move_the_pointer(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    mdir = tmp_path / "models"
    a = _register(con, mdir, 1, None, promote=True)
    with pytest.raises(registry.RegistryError, match="no previous champion"):
        registry.rollback(con, "nothing before")
    b = _register(con, mdir, 2, a.version_id, promote=True)
    assert registry.rollback(con, "b misbehaves").version_id == a.version_id
    assert registry.champion(con) == a
    assert registry.promote(con, b.version_id, "b fixed").version_id == b.version_id
    registry.promote(con, b.version_id, "again")  # promoting the champion changes nothing ...
    assert registry.rollback(con, "undo").version_id == a.version_id  # ... for a rollback
    registry.promote(con, b.version_id, "b fixed")
    assert [h["action"] for h in registry.champion_history(con)] == [
        "promote",
        "rollback",
        "promote",
        "promote",
        "rollback",
        "promote",
        "promote",
    ]
    with pytest.raises(registry.RegistryError, match="unknown model version"):
        registry.promote(con, "v-nope", "typo")


def test_sweep_removes_half_written_weights(tmp_path: Path) -> None:
    mdir = tmp_path / "models"
    mdir.mkdir()
    (mdir / ".v1.pt.tmp-123").write_bytes(b"half")
    (mdir / "v0.pt").write_bytes(b"kept")
    assert [p.name for p in registry.sweep_temporary(mdir)] == [".v1.pt.tmp-123"]
    assert [p.name for p in mdir.iterdir()] == ["v0.pt"]


def test_empty_registry_reads_on_a_store_without_tables(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "bare.duckdb"))
    assert registry.champion(con) is None
    assert registry.list_versions(con) == []
