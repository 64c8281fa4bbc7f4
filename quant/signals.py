"""Published trading signals: immutable, versioned rows (a re-run adds a version, never edits).

A signal is the forecast for ``session`` (the next XSHG session) made at the close of
``decision_session`` from bars whose last one ended at ``last_bar_ts``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from feeds.schema import create_tables
from quant.schema import SIGNALS


@dataclass(frozen=True)
class Signal:
    symbol: str
    session: date
    version: int
    decision_session: date
    p_up: float
    direction: str
    confidence: float
    model_version: str
    last_bar_ts: datetime
    generated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("session", "decision_session", "last_bar_ts", "generated_at"):
            d[k] = d[k].isoformat()
        return d


def publish_signal(
    con: duckdb.DuckDBPyConnection,
    *,
    symbol: str,
    session: date,
    decision_session: date,
    p_up: float,
    model_version: str,
    last_bar_ts: datetime,
    generated_at: datetime | None = None,
) -> Signal:
    """Append a new version of the signal for (symbol, session) and return it."""
    if not 0.0 <= p_up <= 1.0:
        raise ValueError(f"p_up {p_up} outside [0, 1]")
    if last_bar_ts.tzinfo is None:
        raise ValueError("last_bar_ts must be timezone-aware")
    if session <= decision_session:
        raise ValueError(
            f"signal session {session} must follow decision session {decision_session}"
        )
    create_tables(con, (SIGNALS,))
    version = con.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM signals WHERE symbol = ? AND session = ?",
        [symbol, session],
    ).fetchall()[0][0]
    sig = Signal(
        symbol=symbol,
        session=session,
        version=int(version),
        decision_session=decision_session,
        p_up=float(p_up),
        direction="up" if p_up > 0.5 else "down",
        confidence=abs(p_up - 0.5) * 2,
        model_version=model_version,
        last_bar_ts=last_bar_ts.astimezone(UTC),
        generated_at=(generated_at or datetime.now(UTC)).astimezone(UTC),
    )
    con.execute(
        "INSERT INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            sig.symbol,
            sig.session,
            sig.version,
            sig.decision_session,
            sig.p_up,
            sig.direction,
            sig.confidence,
            sig.model_version,
            sig.last_bar_ts,
            sig.generated_at,
        ],
    ).fetchall()
    return sig


_COLS = (
    "symbol, session, version, decision_session, p_up, direction, confidence, model_version, "
    "last_bar_ts, generated_at"
)


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'signals'"
        ).fetchall()[0][0]
    )


def latest_signal(con: duckdb.DuckDBPyConnection, symbol: str) -> Signal | None:
    """The newest version of the signal for the latest session of ``symbol``."""
    if not _has_table(con):
        return None
    rows = con.execute(
        f"SELECT {_COLS} FROM signals WHERE symbol = ? ORDER BY session DESC, version DESC LIMIT 1",
        [symbol],
    ).fetchall()
    return Signal(*rows[0]) if rows else None


def signals_between(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    start: date | None = None,
    end: date | None = None,
    *,
    all_versions: bool = False,
) -> list[Signal]:
    """Signals for sessions in ``[start, end]``; the newest version of each unless asked."""
    if not _has_table(con):
        return []
    sql = f"SELECT {_COLS} FROM signals WHERE symbol = ?"
    params: list[object] = [symbol]
    if start is not None:
        sql += " AND session >= ?"
        params.append(start)
    if end is not None:
        sql += " AND session <= ?"
        params.append(end)
    if not all_versions:
        sql += " QUALIFY version = max(version) OVER (PARTITION BY symbol, session)"
    rows = con.execute(sql + " ORDER BY session, version", params).fetchall()
    return [Signal(*r) for r in rows]
