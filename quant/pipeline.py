"""The daily pipeline: ingest -> fine-tune -> gate -> signal -> backtest -> report.

Each run is one ``pipeline_runs`` row (symbol, run date) with a JSON map of step statuses,
timings and results.  A step's store writes commit in the same transaction as its "done" mark,
so a crash (even SIGKILL) leaves either the step done with all its effects or neither.  Re-running
a completed day does nothing; a failed or interrupted run resumes at its first unfinished step;
a non-trading day is skipped with a log line.  The caller owns the store lock (``feeds.lock``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import torch

from feeds.calendar import CalendarHorizonError, is_trading_day, next_trading_day
from feeds.schema import create_tables
from feeds.snapshot import publish_snapshot
from feeds.store import transaction
from quant import registry
from quant.config import QuantConfig, apply_calendar, models_dir
from quant.pipeline_ingest import DataHeld, DataNotReady
from quant.pipeline_steps import STEPS, RunState, StepError, headline
from quant.schema import PIPELINE_TABLES

log = logging.getLogger(__name__)

STEP_ORDER = (*STEPS, "report")


@dataclass(frozen=True)
class RunResult:
    run_date: date
    symbol: str
    # done | already_done | skipped | failed | stopped | waiting_for_data | late | held
    # | beyond_horizon
    status: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    headline: str = ""
    error: str | None = None


def get_run(con: duckdb.DuckDBPyConnection, symbol: str, run_date: date) -> dict[str, Any] | None:
    rows = con.execute(
        "SELECT status, attempts, steps, headline, error FROM pipeline_runs "
        "WHERE symbol = ? AND run_date = ?",
        [symbol, run_date],
    ).fetchall()
    if not rows:
        return None
    status, attempts, steps, head, err = rows[0]
    return {
        "status": status,
        "attempts": attempts,
        "steps": json.loads(steps),
        "headline": head,
        "error": err,
    }


def last_done(con: duckdb.DuckDBPyConnection, symbol: str) -> date | None:
    """The newest run date completed for ``symbol``."""
    create_tables(con, PIPELINE_TABLES)
    r = con.execute(
        "SELECT max(run_date) FROM pipeline_runs WHERE symbol = ? AND status = 'done'", [symbol]
    ).fetchall()[0][0]
    return r


def _save(con: duckdb.DuckDBPyConnection, symbol: str, run_date: date, **cols: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in cols)
    con.execute(
        f"UPDATE pipeline_runs SET {sets} WHERE symbol = ? AND run_date = ?",
        [*cols.values(), symbol, run_date],
    ).fetchall()


def _write_report(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def run_daily(
    con: duckdb.DuckDBPyConnection,
    cfg: QuantConfig,
    run_date: date,
    *,
    symbol: str | None = None,
    budget_s: float | None = None,
    ingest: bool = True,
    store_path: Path | None = None,
    reports_dir: Path | None = None,
    stop: threading.Event | None = None,
    vendor: Any = None,
    final: bool = False,
) -> RunResult:
    """Run (or resume) the pipeline for ``run_date``; publishes a snapshot when ``store_path``.

    When today's bars have not arrived the run ends ``waiting_for_data`` (``late`` when
    ``final``: the caller's deadline has passed); a bar that fails a live check ends ``held``.
    Neither is a failure: the next run resumes at the ingest step.  ``vendor`` stands in for the
    adapters' vendor API (recorded frames in tests).
    """
    sym = symbol or cfg.data.symbol
    apply_calendar(cfg)
    try:
        if not is_trading_day(run_date):
            log.info("%s is not an XSHG trading day: skipped", run_date)
            return RunResult(run_date, sym, "skipped")
        next_trading_day(run_date)  # the signal must name its session
    except CalendarHorizonError as exc:
        log.warning("%s %s not run: %s", sym, run_date, exc)
        return RunResult(run_date, sym, "beyond_horizon", error=str(exc))
    create_tables(con, PIPELINE_TABLES)
    row = get_run(con, sym, run_date)
    if row is not None and row["status"] == "done":
        log.info("%s %s already done: nothing to do", sym, run_date)
        return RunResult(run_date, sym, "already_done", row["steps"], row["headline"] or "")
    steps: dict[str, dict[str, Any]] = row["steps"] if row else {}
    now = datetime.now(UTC)
    with transaction(con):
        if row is None:
            con.execute(
                "INSERT INTO pipeline_runs VALUES (?, ?, 'running', 1, ?, NULL, ?, NULL, NULL)",
                [sym, run_date, now, json.dumps(steps)],
            ).fetchall()
        else:
            _save(con, sym, run_date, status="running", attempts=row["attempts"] + 1, error=None)
    mdir = models_dir(cfg)
    for p in registry.sweep_temporary(mdir):
        log.warning("removed half-written weights %s left by an interrupted run", p)
    torch.set_num_threads(cfg.pipeline.threads)
    warm_up_torch()
    budget = budget_s if budget_s is not None else cfg.pipeline.finetune.budget_s
    st = RunState(con, cfg, mdir, run_date, sym, budget, ingest, vendor)
    st.details = {k: v.get("detail", {}) for k, v in steps.items() if v["status"] == "done"}
    for name in STEP_ORDER:
        if steps.get(name, {}).get("status") == "done":
            continue
        if stop is not None and stop.is_set():
            log.info("stop requested: run %s ends before step %s", run_date, name)
            return RunResult(run_date, sym, "stopped", steps)
        log.info("%s %s: step %s started", sym, run_date, name)
        t0 = time.perf_counter()
        try:
            if name == "report":
                detail, writes = _report(st, steps, reports_dir or cfg.pipeline.reports_dir)
            else:
                detail, writes = STEPS[name](st)
            done = {"status": "done", "seconds": round(time.perf_counter() - t0, 3)}
            steps[name] = {**done, "detail": detail}
            with transaction(con):  # the step's effects and its "done" mark, or neither
                if writes is not None:
                    writes(con)
                cols: dict[str, Any] = {"steps": json.dumps(steps, default=str)}
                if name == "report":
                    cols |= {"status": "done", "finished_at": datetime.now(UTC)}
                    cols["headline"] = detail["headline"]
                _save(con, sym, run_date, **cols)
        except (DataNotReady, DataHeld) as exc:
            r = _not_ready(con, st, steps, name, exc, time.perf_counter() - t0, final)
            if store_path is not None and r.status != "waiting_for_data":
                publish_snapshot(con, store_path)  # readers see the late or held day
            return r
        except Exception as exc:
            msg = f"{name}: {type(exc).__name__}: {exc}"
            if isinstance(exc, StepError | registry.RegistryError):
                log.error("%s %s failed at %s", sym, run_date, msg)
            else:
                log.exception("%s %s failed at %s", sym, run_date, msg)
            steps[name] = {"status": "failed", "seconds": time.perf_counter() - t0, "error": msg}
            with transaction(con):
                _save(
                    con,
                    sym,
                    run_date,
                    status="failed",
                    steps=json.dumps(steps, default=str),
                    error=msg,
                )
            return RunResult(run_date, sym, "failed", steps, error=msg)
        st.details[name] = detail
        if name == "gate" and detail.get("promoted") and store_path is not None:
            publish_snapshot(con, store_path)
        log.info("%s %s: step %s done in %.2fs", sym, run_date, name, steps[name]["seconds"])
    if store_path is not None:
        publish_snapshot(con, store_path)
    return RunResult(run_date, sym, "done", steps, st.details["report"]["headline"])


def _not_ready(
    con: duckdb.DuckDBPyConnection,
    st: RunState,
    steps: dict[str, dict[str, Any]],
    name: str,
    exc: Exception,
    seconds: float,
    final: bool,
) -> RunResult:
    """Record a day whose data is missing (waiting, or late past the deadline) or held."""
    status = "held" if isinstance(exc, DataHeld) else "late" if final else "waiting_for_data"
    msg = f"{name}: {exc}"
    log_at = log.error if status != "waiting_for_data" else log.warning
    log_at("%s %s %s: %s", st.symbol, st.run_date, status, msg)
    steps[name] = {"status": status, "seconds": round(seconds, 3), "error": msg}
    with transaction(con):
        _save(con, st.symbol, st.run_date, status=status, steps=json.dumps(steps, default=str),
              error=msg)  # fmt: skip
    return RunResult(st.run_date, st.symbol, status, steps, error=msg)


def mark_late(con: duckdb.DuckDBPyConnection, symbol: str, run_date: date) -> RunResult | None:
    """Turn a day still ``waiting_for_data`` into ``late`` (its deadline has passed)."""
    create_tables(con, PIPELINE_TABLES)
    row = get_run(con, symbol, run_date)
    if row is None or row["status"] != "waiting_for_data":
        return None
    with transaction(con):
        _save(con, symbol, run_date, status="late")
    log.error("%s %s late: %s", symbol, run_date, row["error"])
    return RunResult(run_date, symbol, "late", row["steps"], error=row["error"])


def stale_runs(con: duckdb.DuckDBPyConnection, symbol: str) -> list[tuple[date, str, str]]:
    """(run date, status, error) of days after the last completed one that are late or held."""
    create_tables(con, PIPELINE_TABLES)
    done = last_done(con, symbol)
    rows = con.execute(
        "SELECT run_date, status, error FROM pipeline_runs WHERE symbol = ? "
        "AND status IN ('late', 'held', 'waiting_for_data') AND run_date > ? ORDER BY run_date",
        [symbol, done or date(1900, 1, 1)],
    ).fetchall()
    return [(d, s, e or "") for d, s, e in rows]


def warm_up_torch() -> None:
    """Import torch's optimiser machinery now (the first AdamW imports torch._dynamo, several
    seconds) so that the fine-tune budget measures training, not a one-off import."""
    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())


def _report(
    st: RunState, steps: dict[str, dict[str, Any]], out: Path
) -> tuple[dict[str, Any], None]:
    head = headline(st)
    path = out / st.symbol / f"{st.run_date.isoformat()}.json"
    timings = {k: v.get("seconds") for k, v in steps.items()}
    _write_report(
        path,
        {
            "symbol": st.symbol,
            "run_date": st.run_date.isoformat(),
            "headline": head,
            "timings_s": timings,
            "steps": {k: v.get("detail") for k, v in steps.items()},
        },
    )
    return {"headline": head, "path": str(path)}, None
