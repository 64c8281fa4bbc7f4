"""Checks today's bar passes before the model sees it, and the holds an operator reviews.

The bar has already passed the file validation (prices, OHLC, calendar, session).  On top:
- its close agrees with a second source's close of the same session (``live.second_source``),
- the session's 1-minute bars of the symbol resample to its high, low and close,
- its close-to-close move stays within ``live.max_move``.
A bar that fails is held for review (one ``live_holds`` row) and the day is not forecast; the
operator releases it (``quant feeds release``) once checked, and the next run proceeds.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import polars as pl

from feeds.read import daily_bars, intraday_bars, sources
from feeds.resample import resample_agreement
from feeds.schema import create_tables
from feeds.store import transaction
from quant.schema import LIVE_HOLDS
from quant.settings_feeds import LiveSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckReport:
    passed: list[str]
    problems: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "problems": self.problems}


def check_bar(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    source: str,
    session: date,
    s: LiveSettings,
    *,
    priority: tuple[str, ...],
) -> CheckReport:
    """Run the live checks on the stored daily bar of ``symbol`` from ``source`` at ``session``
    (the 1-minute bars it is checked against come from the first source of ``priority``)."""
    passed: list[str] = []
    problems: list[str] = []
    bars = daily_bars(con, symbol, end=session, source=source).tail(2)
    today = bars.filter(pl.col("session") == session)
    if today.is_empty():
        return CheckReport([], [f"no {source} daily bar of {symbol} for {session}"])
    close = float(today["close"][0])
    if bars.height == 2:
        prev = float(bars["close"][0])
        move = close / prev - 1
        if abs(move) > s.max_move:
            problems.append(
                f"move {100 * move:+.2f}% from {bars['session'][0]} exceeds the "
                f"{100 * s.max_move:g}% bound"
            )
        else:
            passed.append(f"move {100 * move:+.2f}%")
    if s.second_source and s.second_source != source:
        other = _bar(con, symbol, s.second_source, session)
        if other is None:
            passed.append(f"second source {s.second_source}: no bar for {session}, not compared")
        else:
            diff = abs(close / other - 1)
            (problems if diff > s.max_close_rel_diff else passed).append(
                f"close {close:.3f} vs {s.second_source} {other:.3f}: relative difference "
                f"{diff:.2e} (limit {s.max_close_rel_diff:.0e})"
            )
    if "1m" in _intraday_freqs(con, symbol):
        minutes = intraday_bars(con, symbol, "1m", start=session, end=session, priority=priority)
        if not minutes.is_empty():
            agree = resample_agreement(minutes, today).row(0, named=True)
            worst = max(("high", "low", "close"), key=lambda f: agree[f"rel_diff_{f}"])
            diff = agree[f"rel_diff_{worst}"]
            (problems if diff > s.resample_rel_tol else passed).append(
                f"{minutes.height} 1-minute bars resample to the daily bar: worst field {worst} "
                f"{diff:.2e} (limit {s.resample_rel_tol:.0e})"
            )
    return CheckReport(passed, problems)


def _bar(con: duckdb.DuckDBPyConnection, symbol: str, source: str, d: date) -> float | None:
    if source not in sources(con, symbol, "1d"):
        return None
    got = daily_bars(con, symbol, start=d, end=d, source=source)
    return None if got.is_empty() else float(got["close"][0])


def _intraday_freqs(con: duckdb.DuckDBPyConnection, symbol: str) -> set[str]:
    rows = con.execute(
        "SELECT DISTINCT frequency FROM bars_intraday WHERE symbol = ?", [symbol]
    ).fetchall()
    return {r[0] for r in rows}


def hold(
    con: duckdb.DuckDBPyConnection, symbol: str, session: date, source: str, problems: list[str]
) -> None:
    """Record (once) that the bar of ``session`` is held for review."""
    create_tables(con, (LIVE_HOLDS,))
    with transaction(con):
        con.execute(
            "INSERT INTO live_holds VALUES (?, ?, ?, ?, ?, NULL, NULL) ON CONFLICT DO NOTHING",
            [symbol, session, source, json.dumps(problems), datetime.now(UTC)],
        ).fetchall()
    log.error("%s %s held for review: %s", symbol, session, "; ".join(problems))


def released(con: duckdb.DuckDBPyConnection, symbol: str, session: date) -> bool:
    """True when an operator released the hold of ``session`` (its checks are then skipped)."""
    create_tables(con, (LIVE_HOLDS,))
    rows = con.execute(
        "SELECT released_at FROM live_holds WHERE symbol = ? AND session = ?", [symbol, session]
    ).fetchall()
    return bool(rows) and rows[0][0] is not None


def release(con: duckdb.DuckDBPyConnection, symbol: str, session: date, by: str) -> bool:
    """Release a hold after review; False when there was none to release."""
    create_tables(con, (LIVE_HOLDS,))
    with transaction(con):
        rows = con.execute(
            "UPDATE live_holds SET released_at = ?, released_by = ? "
            "WHERE symbol = ? AND session = ? AND released_at IS NULL RETURNING session",
            [datetime.now(UTC), by, symbol, session],
        ).fetchall()
    return bool(rows)


def open_holds(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Holds not released yet, oldest first."""
    create_tables(con, (LIVE_HOLDS,))
    rows = con.execute(
        "SELECT symbol, session, source, problems, held_at FROM live_holds "
        "WHERE released_at IS NULL ORDER BY session"
    ).fetchall()
    return [
        {"symbol": s, "session": d, "source": src, "problems": json.loads(p), "held_at": t}
        for s, d, src, p, t in rows
    ]
