"""Synthetic bars never share a symbol with real ones.

The demo's SYNTHETIC market lands under a symbol no exchange lists (``SYN300.SIM``).  This guard
refuses, before anything is written, a load that would put synthetic and real sources under one
symbol, whichever arrives first, so a store that serves a broker never holds made-up bars of the
instrument it forecasts.
"""

from __future__ import annotations

import duckdb
import polars as pl

from feeds.parse import IngestError
from feeds.series import distinct
from feeds.synthetic import SYNTHETIC_SOURCE


def _sources(con: duckdb.DuckDBPyConnection, symbols: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {s: set() for s in symbols}
    marks = ", ".join("?" for _ in symbols)
    # intraday series are registered in bar_series: no scan of the bars themselves
    rows = con.execute(
        " UNION ".join(
            f"SELECT symbol, source FROM {table} WHERE symbol IN ({marks})"
            for table in ("bars_daily", "bar_series")
        ),
        [*symbols, *symbols],
    ).fetchall()
    for sym, src in rows:
        out[sym].add(src)
    return out


def check_provenance(
    con: duckdb.DuckDBPyConnection,
    bars: pl.DataFrame,
    *,
    name: str,
    series: pl.DataFrame | None = None,
) -> None:
    """Raise ``IngestError`` when landing ``bars`` would mix synthetic and real sources
    (``series``: their distinct series, ``feeds.series.distinct``, when the caller has them)."""
    if bars.is_empty():
        return
    # a batch holds a few series: their (symbol, source) pairs are checked in Python
    incoming: dict[str, set[str]] = {}
    for sym, src in distinct(bars if series is None else series, ["symbol", "source"]).rows():
        incoming.setdefault(sym, set()).add(src)
    stored = _sources(con, sorted(incoming))
    for sym, new in sorted(incoming.items()):
        have = stored[sym] | new
        if SYNTHETIC_SOURCE in have and have - {SYNTHETIC_SOURCE}:
            real = ", ".join(sorted(have - {SYNTHETIC_SOURCE}))
            raise IngestError(
                f"{name}: symbol {sym} would hold both synthetic bars and real ones ({real}); "
                "the synthetic market has its own symbol (data.synthetic_symbol)"
            )


def mixed_symbols(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Symbols of the store holding both synthetic and real sources (empty when sound)."""
    rows = con.execute(
        "SELECT symbol, list(DISTINCT source ORDER BY source) FROM ("
        "SELECT symbol, source FROM bars_daily UNION ALL SELECT symbol, source FROM bars_intraday"
        ") GROUP BY symbol"
    ).fetchall()
    return {
        sym: list(srcs)
        for sym, srcs in rows
        if SYNTHETIC_SOURCE in srcs and len(set(srcs) - {SYNTHETIC_SOURCE}) > 0
    }
