"""Promotion gate: challenger against champion on a recent window neither trained on.

The rule: promote when the challenger's log loss on the gate window is at most the champion's
plus ``max_log_loss_increase`` (the configured margin, 0 by default).  Log loss is the proper
score; accuracy over 20 sessions moves in 5-point steps and is mostly noise, so its optional
clause (accuracy at least the champion's minus ``max_accuracy_drop``) is off by default (1.0).
Every decision, promoted or not, is recorded with its figures (``gate_decisions``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import numpy as np

from feeds.schema import create_tables
from models.forecaster import Forecaster
from models.metrics import score_directional
from quant.market_data import MarketData
from quant.schema import GATE_DECISIONS
from quant.settings_pipeline import GateSettings


@dataclass(frozen=True)
class GateScore:
    n: int
    log_loss: float
    accuracy: float


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    challenger: GateScore
    champion: GateScore | None

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"challenger": self.challenger.__dict__}
        if self.champion is not None:
            out["champion"] = self.champion.__dict__
        return out


def score(fc: Forecaster, data: MarketData, idx: np.ndarray) -> GateScore:
    """Log loss and accuracy of ``fc`` on the labelled sessions ``idx``."""
    p, _ = fc.predict_windows(data.windows.take(idx))
    s = score_directional(data.labels[idx], p)
    return GateScore(s.n, s.log_loss, s.accuracy)


def decide(
    challenger: GateScore,
    champion: GateScore | None,
    s: GateSettings,
    *,
    unchanged: bool = False,
) -> GateDecision:
    """The gate's rule (pure).  ``unchanged``: the fine-tune kept the champion's own weights in
    every member (no validation improvement), so there is nothing to promote."""
    if champion is None:
        return GateDecision(True, "no champion yet", challenger, None)
    if unchanged:
        why = "kept champion: the fine-tune kept the champion's weights (no validation gain)"
        return GateDecision(False, why, challenger, champion)
    worse_loss = challenger.log_loss > champion.log_loss + s.max_log_loss_increase
    worse_acc = challenger.accuracy < champion.accuracy - s.max_accuracy_drop
    figures = (
        f"log loss {challenger.log_loss:.4f} vs {champion.log_loss:.4f} "
        f"(margin {s.max_log_loss_increase:g}), "
        f"accuracy {challenger.accuracy:.3f} vs {champion.accuracy:.3f} on {challenger.n} sessions"
    )
    if worse_loss or worse_acc:
        what = " and ".join(
            w for w, bad in (("log loss higher", worse_loss), ("accuracy lower", worse_acc)) if bad
        )
        return GateDecision(
            False, f"kept champion: challenger {what} ({figures})", challenger, champion
        )
    return GateDecision(True, f"promoted: not worse ({figures})", challenger, champion)


def record(
    con: duckdb.DuckDBPyConnection,
    *,
    run_date: date,
    symbol: str,
    challenger_id: str,
    champion_id: str | None,
    decision: GateDecision,
    window: tuple[date, date],
) -> None:
    """Insert the decision; the caller owns the transaction."""
    create_tables(con, (GATE_DECISIONS,))
    con.execute(
        "INSERT INTO gate_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_date,
            symbol,
            challenger_id,
            champion_id,
            decision.promote,
            decision.reason,
            window[0],
            window[1],
            json.dumps(decision.metrics()),
            datetime.now(UTC),
        ],
    ).fetchall()
