"""`quant` market-data commands via click's test runner: ingest, sources, reconcile, db stats."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feeds.profiles import profiles
from quant.cli import cli

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"

WIND_HEADER = ",OPEN,HIGH,LOW,CLOSE,VWAP,VOLUME,AMT"
GOOD = [
    "2024-01-02,3400.0,3410.0,3390.0,3405.0,12.1,1000,12100",
    "2024-01-03,3405.0,3420.0,3400.0,3415.0,12.2,1100,13420",
]
SATURDAY = "2024-01-06,3415.0,3418.0,3380.0,3385.0,12.0,900,10800"
STATS_KEYS = {"symbol", "frequency", "source", "rows", "first", "last", "quarantined"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No QUANT_* variables from the developer's shell leak into these runs."""
    for key in list(os.environ):
        if key.startswith("QUANT"):
            monkeypatch.delenv(key)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store" / "quant.duckdb"


@pytest.fixture
def wind_file(tmp_path: Path) -> Path:
    p = tmp_path / "wind.csv"
    p.write_text("\n".join([WIND_HEADER, *GOOD, SATURDAY]) + "\n")
    return p


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def _stats(*args: str | Path, env: dict[str, str] | None = None) -> list[dict]:
    res = run(*args, "db", "stats", "--json", env=env)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_help_lists_the_commands() -> None:
    res = run("--help")
    assert res.exit_code == 0
    for cmd in ("ingest", "sources", "reconcile", "db", "main"):
        assert f"  {cmd} " in res.output, cmd
    assert "--db" in res.output
    assert "QUANT_DB" in res.output


def test_db_help_lists_stats() -> None:
    res = run("db", "--help")
    assert res.exit_code == 0
    assert "stats" in res.output


def test_sources_lists_every_profile() -> None:
    res = run("sources")
    assert res.exit_code == 0
    for name in profiles():
        assert name in res.output
    rows = json.loads(run("sources", "--json").stdout)
    assert [r["profile"] for r in rows] == list(profiles())
    wind = next(r for r in rows if r["profile"] == "wind_daily")
    assert wind == {
        "profile": "wind_daily",
        "source": "wind",
        "frequency": "1d",
        "kind": "index",
        "format": "csv",
        "default_symbol": "000300.SH",
        "description": profiles()["wind_daily"].description,
    }


def test_ingest_with_quarantined_rows_exits_zero(db: Path, wind_file: Path) -> None:
    res = run("--db", db, "ingest", wind_file)
    assert res.exit_code == 0, res.output
    assert f"ingested   {wind_file}" in res.stdout
    assert "profile=wind_daily read=3 loaded=2 inserted=2 updated=0 quarantined=1" in res.stdout
    [row] = _stats("--db", db)
    assert row == {
        "symbol": "000300.SH",
        "frequency": "1d",
        "source": "wind",
        "rows": 2,
        "first": "2024-01-02",
        "last": "2024-01-03",
        "quarantined": 1,
    }


def test_reingest_reports_unchanged(db: Path, wind_file: Path) -> None:
    assert run("--db", db, "ingest", wind_file).exit_code == 0
    res = run("--db", db, "ingest", wind_file)
    assert res.exit_code == 0
    assert res.stdout.startswith(f"unchanged  {wind_file}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"\xff\xfe\xff\n\xff\xff\n", "not UTF-8 or GBK/GB18030 text"),
        (b"date;open;high;low;close\n2024-01-02;1;1;1;1\n", "line 1: expected comma-delimited"),
    ],
)
def test_unreadable_file_fails_but_other_files_land(
    db: Path, wind_file: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    res = run("--db", db, "ingest", bad, wind_file)  # the bad file comes first
    assert res.exit_code == 1
    assert f"error      {bad}: {message}" in res.stderr
    assert "1 file(s) could not be ingested" in res.stderr
    assert f"ingested   {wind_file}" in res.stdout
    [row] = _stats("--db", db)
    assert (row["source"], row["rows"]) == ("wind", 2)


def test_unknown_profile_is_a_clear_error(db: Path, wind_file: Path) -> None:
    res = run("--db", db, "ingest", "--profile", "bloomberg", wind_file)
    assert res.exit_code == 1
    assert "unknown profile 'bloomberg'" in res.stderr


def test_ingest_without_paths_is_a_usage_error(db: Path) -> None:
    res = run("--db", db, "ingest")
    assert res.exit_code == 2
    assert "give PATH... and/or --synthetic" in res.output


def test_missing_path_is_a_usage_error(db: Path, tmp_path: Path) -> None:
    res = run("--db", db, "ingest", tmp_path / "nope.csv")
    assert res.exit_code == 2
    assert "nope.csv" in res.output


def test_ingest_a_directory(db: Path, wind_file: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("not data")  # ignored: not an ingestible suffix
    res = run("--db", db, "ingest", tmp_path)
    assert res.exit_code == 0, res.output
    assert res.stdout.count("ingested ") == 1


def test_db_stats_json_keys(db: Path, wind_file: Path) -> None:
    run("--db", db, "ingest", wind_file)
    rows = _stats("--db", db)
    assert rows
    assert all(set(r) == STATS_KEYS for r in rows)
    table = run("--db", db, "db", "stats")
    assert table.exit_code == 0
    assert "000300.SH" in table.stdout
    assert "wind" in table.stdout


def test_db_stats_without_a_store_fails_clearly(db: Path) -> None:
    res = run("--db", db, "db", "stats")
    assert res.exit_code == 1
    assert "does not exist" in res.output
    assert not db.exists()  # a read must not create the store


def test_quant_db_env_works_like_the_option(db: Path, wind_file: Path) -> None:
    env = {"QUANT_DB": str(db)}
    assert run("ingest", wind_file, env=env).exit_code == 0
    assert db.exists()
    assert _stats(env=env) == _stats("--db", db)


def test_reconcile_without_data_fails_clearly(db: Path, wind_file: Path) -> None:
    run("--db", db, "ingest", wind_file)
    res = run("--db", db, "reconcile", "600519.SH")
    assert res.exit_code == 1
    assert "no daily bars stored for 600519.SH" in res.output
    one = run("--db", db, "reconcile", "000300.SH")
    assert one.exit_code == 0
    assert "fewer than two sources" in one.stdout


@pytest.mark.real_data
@pytest.mark.skipif(not REAL.exists(), reason=f"real data dir ../shared/data/real absent ({REAL})")
def test_reconcile_real_daily_index_files(db: Path) -> None:
    files = [REAL / "csi300_daily_wind_rlcsi300.csv", REAL / "csi300_daily_eastmoney_quantbt.csv"]
    assert run("--db", db, "ingest", *files).exit_code == 0
    res = run("--db", db, "reconcile", "000300.SH", "--json")
    assert res.exit_code == 0, res.output
    [r] = json.loads(res.stdout)
    assert r["sources"] == ["eastmoney", "wind"]
    assert r["common_sessions"] == 4497
    assert r["max_rel_diff"]["close"] < 1e-5
    text = run("--db", db, "reconcile", "000300.SH")
    assert "eastmoney vs wind: 4497 common sessions" in text.stdout


SMALL_SYNTHETIC = {
    "QUANT__DATA__SYNTHETIC_START": "2024-01-02",
    "QUANT__DATA__SYNTHETIC_END": "2024-01-12",
    "QUANT__DATA__SYNTHETIC_MINUTE_SESSIONS": "2",
}


def test_ingest_synthetic(db: Path) -> None:
    res = run("--db", db, "ingest", "--synthetic", env=SMALL_SYNTHETIC)
    assert res.exit_code == 0, res.output
    assert "profile=synthetic read=489 loaded=489" in res.stdout  # 9 daily + 2 x 240 minute bars
    got = {(r["frequency"], r["source"]): r["rows"] for r in _stats("--db", db)}
    assert got == {("1d", "synthetic"): 9, ("1m", "synthetic"): 480}
    again = run("--db", db, "ingest", "--synthetic", env=SMALL_SYNTHETIC)
    assert again.stdout.startswith("unchanged  synthetic://")


def test_main_job_ingests_synthetic_and_real_dir(db: Path, wind_file: Path) -> None:
    env = {**SMALL_SYNTHETIC, "QUANT__DATA__REAL_DATA_DIR": str(wind_file.parent)}
    res = run("--db", db, "main", env=env)
    assert res.exit_code == 0, res.output
    assert f"ingested   {wind_file}" in res.stdout
    assert "store summary" in res.stdout
    got = {(r["frequency"], r["source"]): r["rows"] for r in _stats("--db", db)}
    assert got == {("1d", "synthetic"): 9, ("1d", "wind"): 2, ("1m", "synthetic"): 480}


def test_main_job_without_real_data(db: Path, tmp_path: Path) -> None:
    absent = tmp_path / "no-such-dir"
    env = {**SMALL_SYNTHETIC, "QUANT__DATA__REAL_DATA_DIR": str(absent)}
    res = run("--db", db, "main", env=env)
    assert res.exit_code == 0, res.output
    assert f"real data: {absent} not found" in res.stdout
    skipped = run("--db", db, "main", "--no-real", env=env)
    assert skipped.exit_code == 0
    assert "real data: skipped (--no-real)" in skipped.stdout
