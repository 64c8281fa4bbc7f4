"""Every subcommand turns user and data errors into one line and a non-zero exit status.

Each case runs the real command (click's runner, exceptions not caught by the runner) against a
broken input: an uncaught exception fails the test, and so does a traceback in the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from feeds.ingest import ingest_synthetic
from feeds.store import open_store
from quant.cli import cli

PLAIN = "date,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n2024-01-03,1,1,1,1,1\n"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("QUANT"):
            monkeypatch.delenv(key)


@pytest.fixture
def short_store(tmp_path: Path) -> Path:
    """A store with two plain daily bars: too little history for anything."""
    store = tmp_path / "short" / "q.duckdb"
    f = tmp_path / "p.csv"
    f.write_text(PLAIN)
    res = CliRunner().invoke(
        cli, ["--db", str(store), "ingest", "--symbol", "000300.SH", str(f)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    return store


@pytest.fixture
def synthetic_store(tmp_path: Path) -> Path:
    from datetime import date

    store = tmp_path / "syn" / "q.duckdb"
    con = open_store(store)
    ingest_synthetic(con, start=date(2024, 1, 2), end=date(2024, 3, 29), seed=1, minute_sessions=0)
    con.close()
    return store


def _cases(tmp: Path, short: Path, syn: Path) -> list[tuple[str, list[str], str]]:
    missing = tmp / "nowhere" / "q.duckdb"
    bad_csv = tmp / "bad.csv"
    bad_csv.write_text("when;what\n1;2\n")
    bad_pred = tmp / "pred.csv"
    bad_pred.write_text("a,b\n1,2\n")
    bad_cfg = tmp / "bad.toml"
    bad_cfg.write_text("[store]\nno_such_field = 1\n")
    out = str(tmp / "out")
    db = ["--db", str(short)]
    return [
        (
            "ingest",
            ["--db", str(tmp / "new" / "q.duckdb"), "ingest", str(bad_csv)],
            "could not be ingested",
        ),
        (
            "fetch",
            [
                "--db",
                str(tmp / "new" / "q.duckdb"),
                "fetch",
                "no-such",
                "X",
                "--start",
                "2024-01-02",
                "--end",
                "2024-01-03",
            ],
            "no-such",
        ),
        ("reconcile", ["--db", str(missing), "reconcile", "000300.SH"], "does not exist"),
        ("db stats", ["--db", str(missing), "db", "stats"], "does not exist"),
        ("evaluate", [*db, "evaluate", "--out", out, "--models", "logistic"], "history"),
        (
            "evaluate no data",
            ["--db", str(syn), "evaluate", "--symbol", "NOPE", "--out", out],
            "NOPE",
        ),
        ("backtest", [*db, "backtest", "--predictions", str(bad_pred), "--no-sweep"], "pred"),
        (
            "backtest no data",
            ["--db", str(syn), "backtest", "--symbol", "NOPE", "--predictor", "persistence"],
            "NOPE",
        ),
        ("models", ["--db", str(missing), "models", "list"], "no published snapshot"),
        ("predict", [*db, "predict"], "champion"),
        ("finetune", [*db, "finetune", "--date", "2024-01-03", "--budget", "1"], ""),
        ("run-daily", [*db, "run-daily", "--date", "2024-01-03", "--no-ingest"], ""),
        (
            "replay",
            [
                *db,
                "replay",
                "--from",
                "2024-01-02",
                "--to",
                "2024-01-03",
                "--budget",
                "1",
                "--out",
                out,
            ],
            "",
        ),
        ("keys", ["--db", str(short), "keys", "revoke", "nope"], "nope"),
        ("config", ["--config", str(bad_cfg), "db", "stats"], "no_such_field"),
    ]


@pytest.mark.slow
def test_every_subcommand_reports_broken_input_in_one_line(
    tmp_path: Path, short_store: Path, synthetic_store: Path
) -> None:
    failures = []
    for name, args, needle in _cases(tmp_path, short_store, synthetic_store):
        res = CliRunner().invoke(cli, args, catch_exceptions=False)
        text = res.output
        ok = (
            res.exit_code != 0
            and "Traceback" not in text
            and needle.lower() in text.lower()
            and any(line.startswith("Error: ") for line in text.splitlines())
        )
        if not ok:
            failures.append((name, res.exit_code, text[-600:]))
    assert not failures, failures


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    args = ["--db", str(tmp_path / "none.duckdb"), "db", "stats"]
    quiet = (
        subprocess.run(
            [sys.executable, "-m", "quant.cli.__main__", *args], capture_output=True, text=True
        )
        if Path("quant/cli/__main__.py").exists()
        else None
    )
    del quiet
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-c", "from quant.cli import main; main()"]
    plain = subprocess.run([*cmd, *args], capture_output=True, text=True, env=env)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines()[-1].startswith("Error: store ")
    loud = subprocess.run([*cmd, "-v", *args], capture_output=True, text=True, env=env)
    assert loud.returncode == 1
    assert "Traceback" in loud.stderr and "StoreError" in loud.stderr


@pytest.mark.slow
def test_a_second_writer_process_gets_the_holders_pid_and_purpose(short_store: Path) -> None:
    """Two processes: one holds the writer lock (as `quant schedule` does), `quant ingest` fails."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from feeds.lock import StoreLock; "
            "l = StoreLock(sys.argv[1], 'quant schedule').acquire(); print('held', flush=True); "
            "sys.stdin.read()",  # holds the lock until the test closes its stdin (or kills it)
            str(short_store),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        f = short_store.parent / "more.csv"
        f.write_text(PLAIN.replace("2024-01-03", "2024-01-04"))
        for args in (
            ["ingest", "--symbol", "000300.SH", str(f)],
            ["predict"],
            ["backtest", "--predictor", "persistence", "--no-sweep", "--record"],
        ):
            t0 = time.perf_counter()
            res = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from quant.cli import main; main()",
                    "--db",
                    str(short_store),
                    *args,
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            assert res.returncode == 1, (args, res.stderr)
            assert f"store is locked by PID {holder.pid} (quant schedule)" in res.stderr, args
            assert "Traceback" not in res.stderr
            assert time.perf_counter() - t0 < 60  # fails at once, does not wait for the lock
            assert holder.poll() is None  # the lock was held all along
    finally:
        holder.kill()
        holder.wait()
