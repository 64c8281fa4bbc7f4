"""The steps of the daily pipeline.  Each does its slow work first and returns its result and
the store writes that must commit together with the step's "done" mark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from models.metrics import direction
from models.sizes import enough_to_train
from quant import gate, registry
from quant.config import QuantConfig
from quant.finetune import (
    finetune,
    finetune_indices,
    finetune_settings,
    gate_split,
    model_hash,
    train_scratch,
    window_of,
)
from quant.market_data import MarketData
from quant.pipeline_ingest import StepError, step_ingest
from quant.signals import next_signal, signals_between

log = logging.getLogger(__name__)

Writes = Callable[[duckdb.DuckDBPyConnection], None] | None


@dataclass
class RunState:
    """What one run shares between its steps (rebuilt by a retry in a new process)."""

    con: duckdb.DuckDBPyConnection
    cfg: QuantConfig
    models_dir: Path
    run_date: date
    symbol: str
    budget_s: float
    ingest: bool = True
    vendor: Any = None  # the adapters' vendor API (None: the akshare module)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # done steps' results
    _data: MarketData | None = None

    def data(self) -> MarketData:
        if self._data is None:
            self._data = MarketData.load(self.con, self.cfg, self.run_date, symbol=self.symbol)
        return self._data


def step_finetune(st: RunState) -> tuple[dict[str, Any], Writes]:
    started = time.perf_counter()
    p, fcfg = st.cfg.pipeline, st.cfg.forecast
    data = st.data()
    try:
        repaired = registry.repair_champion(st.con, st.models_dir)
    except registry.RegistryError as exc:  # no champion verifies: start again from scratch
        log.error("%s; training a new first model", exc)
        repaired = None
    n = len(data.windows)
    training: dict[str, list[date]]
    if repaired is None:
        holdout = max(p.initial.holdout_sessions, p.gate.window_sessions)
        if not enough_to_train(n - holdout):
            raise StepError(f"{n} labelled sessions: too few to train a first model")
        idx = np.arange(n - holdout)
        out = train_scratch(data, idx, fcfg, p.initial.model, started=started)
        kind, parent, budget = "initial", None, None
        chash = model_hash(fcfg, p.initial.model, fcfg.train)
        training = {"scratch": [data.sessions[i] for i in idx]}
    else:
        champ_v, champ = repaired
        pool, _ = gate_split(n, p.gate.window_sessions)
        recent, replay = finetune_indices(pool, p.finetune, st.run_date)
        idx = np.sort(np.concatenate([replay, recent]))
        out = finetune(champ, data, idx, fcfg, p.finetune, budget_s=st.budget_s, started=started)
        kind, parent, budget = "finetune", champ_v.version_id, st.budget_s
        chash = model_hash(fcfg, champ.name, finetune_settings(fcfg, p.finetune))
        training = {
            "recent": [data.sessions[i] for i in recent],
            "replay": [data.sessions[i] for i in replay],
        }
    vid = registry.new_version_id()
    path, sha = registry.write_weights(out.forecaster, st.models_dir, vid)
    seconds = time.perf_counter() - started
    start, end = window_of(data, idx)
    metrics = {**out.metrics(), "budget_s": budget, "step_seconds": round(seconds, 3)}
    v = registry.ModelVersion(
        vid, parent, chash, start, end, metrics, sha, path, datetime.now(UTC), kind
    )
    detail = {
        "challenger": vid,
        "kind": kind,
        "budget_s": budget,
        "seconds": round(seconds, 3),
        "overshoot_s": round(seconds - budget, 3) if budget is not None else None,
        "prep_seconds": round(out.seconds - out.fit_seconds, 3),  # bars, windows, champion
        "fit_seconds": round(out.fit_seconds, 3),
        "save_seconds": round(seconds - out.seconds, 3),  # weights written and fsynced
        "samples_per_s": metrics["samples_per_s"],
        "samples_seen": out.samples_seen,
        "steps": out.steps,
        "max_steps": out.max_steps,
        "stopped": out.stopped,
        "changed_members": out.changed_members,
        "n_recent": len(training.get("recent", [])),
        "n_replay": len(training.get("replay", [])),
        "train_start": start.isoformat(),
        "train_end": end.isoformat(),
    }
    return detail, lambda con: registry.insert_version(con, v, training)


def step_gate(st: RunState) -> tuple[dict[str, Any], Writes]:
    data = st.data()
    ch_id = st.details["finetune"]["challenger"]
    ch_v = registry.get_version(st.con, ch_id)
    _, gidx = gate_split(len(data.windows), st.cfg.pipeline.gate.window_sessions)
    window = window_of(data, gidx)
    cur = registry.champion(st.con)
    champ_score = None
    if cur is not None:
        try:
            _, champ = registry.load_champion(st.con, st.models_dir)
            champ_score = gate.score(champ, data, gidx)
        except registry.RegistryError as exc:
            log.error("no champion to compare with (%s): the challenger is promoted", exc)
    try:
        ch = registry.load_verified(ch_v, st.models_dir)
        ft = st.details["finetune"]
        unchanged = (
            st.cfg.pipeline.gate.skip_unchanged
            and ft.get("kind") == "finetune"
            and ft.get("changed_members") == 0
        )
        decision = gate.decide(
            gate.score(ch, data, gidx), champ_score, st.cfg.pipeline.gate, unchanged=unchanged
        )
    except registry.RegistryError as exc:
        decision = gate.GateDecision(
            False, f"kept champion: {exc}", gate.GateScore(0, float("nan"), float("nan")), None
        )

    def writes(con: duckdb.DuckDBPyConnection) -> None:
        gate.record(
            con,
            run_date=st.run_date,
            symbol=st.symbol,
            challenger_id=ch_id,
            champion_id=cur.version_id if cur else None,
            decision=decision,
            window=window,
        )
        if decision.promote:
            action = "initial" if cur is None else "promote"
            registry.set_champion(con, ch_id, action=action, reason=decision.reason)

    detail = {
        "promoted": decision.promote,
        "reason": decision.reason,
        "champion_before": cur.version_id if cur else None,
        "window": [window[0].isoformat(), window[1].isoformat()],
        **decision.metrics(),
    }
    return detail, writes


def step_signal(st: RunState) -> tuple[dict[str, Any], Writes]:
    data = st.data()
    got = registry.repair_champion(st.con, st.models_dir)
    if got is None:
        raise StepError("no champion to predict with")
    v, fc = got
    sig = next_signal(data, fc, v.version_id, session=st.run_date)
    f = sig.forecast
    detail = {
        "session": sig.session.isoformat(),
        "decision_session": st.run_date.isoformat(),
        "p_up": f.p_up,
        "direction": direction(f.p_up),
        "model_version": v.version_id,
        "last_bar_ts": sig.last_bar_ts.isoformat(),
        "used_intraday": f.used_intraday,  # the minute branch saw the session's bars
        "intraday_gate": round(f.gate, 4),
    }

    def writes(con: duckdb.DuckDBPyConnection) -> None:
        sig.publish(con)

    return detail, writes


def _signal_record(st: RunState) -> pl.DataFrame:
    """Published signals whose session closed by the run date, as backtest predictions."""
    data = st.data()
    sigs = signals_between(st.con, st.symbol, end=st.run_date)
    if not sigs:
        return pl.DataFrame()
    labels = data.label_by_session
    rows = [
        (s.decision_session, s.p_up, labels[s.decision_session])
        for s in sigs
        if s.decision_session in labels
    ]
    df = pl.DataFrame(rows, schema=["session", "p_up", "label"], orient="row")
    return df.tail(st.cfg.pipeline.report_window).with_columns(pl.lit("live").alias("model"))


def selected_through(con: duckdb.DuckDBPyConnection, v: registry.ModelVersion) -> date:
    """The last session that trained or selected version ``v``: the end of its training window,
    or of the gate window on which it beat a champion, whichever is later.  (A first model
    promoted with no champion to beat was not selected by its window's scores.)"""
    got = con.execute(
        "SELECT max(window_end) FROM gate_decisions "
        "WHERE challenger_id = ? AND promoted AND champion_id IS NOT NULL",
        [v.version_id],
    ).fetchall()[0][0]
    return max(v.train_end, got) if got is not None else v.train_end


def _holdout(st: RunState) -> tuple[pl.DataFrame, str, date]:
    """The serving model's predictions on labelled sessions that neither trained nor selected
    it (after ``selected_through``), and that boundary."""
    data = st.data()
    got = registry.repair_champion(st.con, st.models_dir)
    if got is None:
        raise StepError("no champion")
    v, fc = got
    through = selected_through(st.con, v)
    idx = np.nonzero(data.windows.sessions > np.datetime64(through, "D"))[0]
    idx = idx[-st.cfg.pipeline.report_window :]
    p, _ = fc.predict_windows(data.windows.take(idx))
    df = pl.DataFrame(
        {
            "session": [data.sessions[i] for i in idx],
            "p_up": p,
            "label": data.labels[idx],
            "model": v.version_id,
        },
        schema={"session": pl.Date, "p_up": pl.Float64, "label": pl.Int64, "model": pl.String},
    )
    return df, v.version_id, through


def step_backtest(st: RunState) -> tuple[dict[str, Any], Writes]:
    # Imported here: vectorbt and matplotlib take seconds to import, and only this step uses them.
    from backtest.inputs import BacktestInputError
    from backtest.report import metrics_document
    from backtest.run import run_backtest

    data = st.data()
    record = _signal_record(st)
    bars = data.daily.select("session", "open", "high", "low", "close")
    basis, version, result = "live signal record", "live", None
    if record.height >= st.cfg.pipeline.min_signal_record:
        try:
            result = run_backtest(record, bars, st.cfg.backtest)
        except BacktestInputError as exc:
            log.info("signal record not backtestable (%s); scoring the holdout instead", exc)
    excluded: dict[str, Any] = {}
    if result is None:
        preds, version, through = _holdout(st)
        basis = "serving model's sessions after its training and gate windows"
        excluded = {"excluded_through": through.isoformat()}
        if preds.height < 2:
            too_few = {"basis": basis, "n_sessions": preds.height, "skipped": "too few sessions"}
            return {**too_few, **excluded, "model_version": version}, None
        result = run_backtest(preds, bars, st.cfg.backtest)
    doc = metrics_document(result, symbol=st.symbol)
    base = doc["baselines"]
    beat = all(doc["accuracy"] > base[k] for k in base)
    detail = {
        "basis": basis,
        **excluded,
        "min_sessions_to_judge": st.cfg.pipeline.headline_min_sessions,
        "model_version": version,
        "first_session": str(result.accuracy_sessions[0]),
        "last_session": str(result.accuracy_sessions[-1]),
        **{k: doc[k] for k in ("n_sessions", "accuracy", "ci_low", "ci_high", "p_value")},
        "baselines": base,
        "mcnemar_p_values": doc["mcnemar_p_values"],
        "beat_baselines": beat,
        **{k: doc.get(k) for k in ("total_return", "sharpe", "max_drawdown")},
        "buy_and_hold_return": doc["buy_and_hold_return"],
        "instrument": doc["instrument"],
    }
    return detail, None


def headline(st: RunState) -> str:
    b, s = st.details.get("backtest", {}), st.details.get("signal", {})
    g = st.details.get("gate", {})
    parts = [f"{st.symbol} {st.run_date}:"]
    if s:
        parts.append(
            f"next session {s['session']} {s['direction']} (p_up {s['p_up']:.3f}, "
            f"model {s['model_version']});"
        )
    parts.append("gate " + ("promoted the challenger;" if g.get("promoted") else "kept champion;"))
    n, need = int(b.get("n_sessions") or 0), st.cfg.pipeline.headline_min_sessions
    where = f"{b.get('basis', 'no scored sessions')}"
    if b.get("excluded_through"):
        where += f", excluding sessions through {b['excluded_through']}"
    if n and b.get("first_session"):
        where += f", {b['first_session']}..{b['last_session']}"
    if n < need:
        parts.append(f"too few sessions to judge: n={n} < {need} ({where})")
    else:
        verdict = "beats" if b["beat_baselines"] else "does not beat"
        mc = b["mcnemar_p_values"]
        sig = "significantly" if max(mc.values()) < 0.05 else "not significantly"
        parts.append(
            f"directional accuracy {100 * b['accuracy']:.1f}% "
            f"[95% Wilson {100 * b['ci_low']:.1f}-{100 * b['ci_high']:.1f}] over n={n} "
            f"sessions ({where}); "
            f"{verdict} the baselines (persistence {100 * b['baselines']['persistence']:.1f}%, "
            f"always-up {100 * b['baselines']['always_up']:.1f}%), {sig} "
            f"(McNemar p {mc['persistence']:.2f} and {mc['always_up']:.2f})"
        )
    return " ".join(parts)


STEPS: dict[str, Callable[[RunState], tuple[dict[str, Any], Writes]]] = {
    "ingest": step_ingest,
    "finetune": step_finetune,
    "gate": step_gate,
    "signal": step_signal,
    "backtest": step_backtest,
}
