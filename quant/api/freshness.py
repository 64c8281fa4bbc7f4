"""Is the store up to date, and how far is the calendar known: what /readyz and /metrics say.

A store is *stale* when a run date after the last completed run of a symbol is ``late`` (its
bars missed the deadline) or ``held`` (its bar failed a live check): the newest signal is then
older than the newest session.  The calendar warning comes from ``feeds.calendar``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from feeds.calendar import EXCHANGE_TZ, horizon, horizon_warning


def stale_runs(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """One line per late or held run date after its symbol's last completed run."""
    has = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'pipeline_runs'"
    ).fetchall()[0][0]
    if not has:
        return ()
    rows = con.execute(
        "SELECT r.symbol, r.run_date, r.status, coalesce(r.error, '') FROM pipeline_runs r "
        "LEFT JOIN (SELECT symbol, max(run_date) AS done FROM pipeline_runs "
        "           WHERE status = 'done' GROUP BY symbol) d USING (symbol) "
        "WHERE r.status IN ('late', 'held') AND (d.done IS NULL OR r.run_date > d.done) "
        "ORDER BY r.symbol, r.run_date"
    ).fetchall()
    return tuple(f"{s} {d} {st}: {e}" for s, d, st, e in rows)


@dataclass(frozen=True)
class Freshness:
    stale: tuple[str, ...]
    horizon: date
    horizon_days_left: int
    horizon_warning: str | None

    @property
    def warnings(self) -> list[str]:
        out = [f"store is stale: {s}" for s in self.stale]
        return out + ([self.horizon_warning] if self.horizon_warning else [])


def freshness(stale: tuple[str, ...], warn_days: int, now: datetime | None = None) -> Freshness:
    today = (now or datetime.now(EXCHANGE_TZ)).astimezone(EXCHANGE_TZ).date()
    h = horizon()
    return Freshness(stale, h, (h - today).days, horizon_warning(today, warn_days))
