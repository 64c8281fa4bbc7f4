"""Compare the sources of one symbol on their common sessions (per-field max relative diff)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import duckdb
import polars as pl

from feeds.read import daily_bars, intraday_bars, sources
from feeds.resample import resample_agreement
from feeds.synthetic import SYNTHETIC_SOURCE

FIELDS = ("open", "high", "low", "close", "volume", "amount")


def reconcile(
    con: duckdb.DuckDBPyConnection, symbol: str, *, include_synthetic: bool = False
) -> list[dict[str, Any]]:
    """One entry per pair of daily sources: common sessions and max |a-b|/|b| per field.

    ``max_rel_diff[field]`` is None when either source lacks the field; ``worst_session`` names
    the session where each maximum occurs.  The synthetic market is left out unless asked for.
    """
    have = [s for s in sources(con, symbol, "1d") if include_synthetic or s != SYNTHETIC_SOURCE]
    out: list[dict[str, Any]] = []
    for a, b in combinations(have, 2):
        da = daily_bars(con, symbol, source=a)
        db = daily_bars(con, symbol, source=b)
        j = da.join(db, on="session", suffix="_b")
        diffs: dict[str, float | None] = {}
        worst: dict[str, str | None] = {}
        for f in FIELDS:
            rel = ((pl.col(f) - pl.col(f"{f}_b")).abs() / pl.col(f"{f}_b").abs()).alias("rel")
            r = j.select("session", rel).drop_nulls("rel")
            if r.is_empty():
                diffs[f], worst[f] = None, None
                continue
            top = r.sort("rel", descending=True).row(0)
            diffs[f], worst[f] = float(top[1]), top[0].isoformat()
        out.append(
            {
                "symbol": symbol,
                "sources": [a, b],
                "common_sessions": j.height,
                "first": j["session"].min().isoformat() if j.height else None,  # type: ignore[union-attr]
                "last": j["session"].max().isoformat() if j.height else None,  # type: ignore[union-attr]
                "only_in": {a: da.height - j.height, b: db.height - j.height},
                "max_rel_diff": diffs,
                "worst_session": worst,
            }
        )
    return out


def reconcile_intraday(
    con: duckdb.DuckDBPyConnection, symbol: str, *, include_synthetic: bool = False
) -> list[dict[str, Any]]:
    """Minute bars resampled to sessions against each daily source of the same symbol.

    Sources are named ``<source>:1m->1d``; fields compared are high, low, close and volume (the
    open is left out: not every minute feed carries the opening call auction).
    """
    keep = (lambda s: True) if include_synthetic else (lambda s: s != SYNTHETIC_SOURCE)
    out: list[dict[str, Any]] = []
    for m_src in filter(keep, sources(con, symbol, "1m")):
        minute = intraday_bars(con, symbol, "1m", source=m_src)
        for d_src in filter(keep, sources(con, symbol, "1d")):
            agree = resample_agreement(minute, daily_bars(con, symbol, source=d_src))
            maxima = agree.select(pl.all().exclude("session").max()).row(0, named=True)
            diffs = {
                f: (None if maxima[f"rel_diff_{f}"] is None else float(maxima[f"rel_diff_{f}"]))
                for f in ("high", "low", "close", "volume")
            }
            out.append(
                {
                    "symbol": symbol,
                    "sources": [f"{m_src}:1m->1d", d_src],
                    "common_sessions": agree.height,
                    "max_rel_diff": diffs,
                }
            )
    return out
