"""Notebook 01: what the market store holds, two plots of it, quarantine and reconcile tables."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import matplotlib.dates as mdates
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from feeds.read import daily_bars, intraday_bars, resolve_source, sources
from feeds.reconcile import FIELDS, reconcile, reconcile_intraday
from feeds.stats import store_stats
from feeds.synthetic import SYNTHETIC_SOURCE
from quant.config import QuantConfig
from quant.research.figures import new_figure
from quant.research.store import research_symbol

EXCHANGE_TZ = ZoneInfo("Asia/Shanghai")


def store_overview(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per (symbol, frequency, source): rows, first and last bar, quarantined rows."""
    return pl.DataFrame(store_stats(con), infer_schema_length=None)


def symbols(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per symbol: its frequencies and sources."""
    o = store_overview(con)
    return o.group_by("symbol", maintain_order=True).agg(
        pl.col("frequency").unique().sort().str.join(", ").alias("frequencies"),
        pl.col("source").unique().sort().str.join(", ").alias("sources"),
        pl.col("rows").sum().alias("bars"),
    )


def _real_first(have: list[str], priority: tuple[str, ...]) -> list[str]:
    """Real sources in read priority order; the synthetic market only when nothing real exists."""
    rank = {s: i for i, s in enumerate(priority)}
    real = sorted((s for s in have if s != SYNTHETIC_SOURCE), key=lambda s: rank.get(s, len(rank)))
    return real or have


def plot_daily_closes(
    con: duckdb.DuckDBPyConnection, cfg: QuantConfig, symbol: str | None = None
) -> Figure:
    """Daily closes of every real source of ``symbol`` (default: the index, or the synthetic
    market's own symbol when the store holds no index bars)."""
    symbol = symbol or research_symbol(con, cfg)
    fig = new_figure(10, 4)
    ax = fig.add_subplot()
    shown = _real_first(sources(con, symbol, "1d"), cfg.store.source_priority)
    for i, src in enumerate(shown):  # later sources dashed on top: overlaps stay visible
        d = daily_bars(con, symbol, source=src)
        style = {"lw": 1.2} if i == 0 else {"lw": 0.8, "ls": "--"}
        label = f"{src} ({d.height} sessions)"
        ax.plot(d["session"].to_list(), d["close"].to_list(), label=label, **style)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_ylabel("close, index points (log scale)")
    what = "SYNTHETIC market" if shown == [SYNTHETIC_SOURCE] else "daily close"
    ax.set_title(f"{symbol} {what}: sources {', '.join(shown)}")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def full_sessions(con: duckdb.DuckDBPyConnection, symbol: str, source: str) -> list[date]:
    """Sessions of ``symbol``'s 1-minute bars from ``source`` that hold the most bars."""
    rows = con.execute(
        "SELECT session, count(*) AS n FROM bars_intraday WHERE symbol = ? AND frequency = '1m' "
        "AND source = ? GROUP BY session QUALIFY n = max(n) OVER () ORDER BY session",
        [symbol, source],
    ).fetchall()
    return [r[0] for r in rows]


def plot_intraday_day(
    con: duckdb.DuckDBPyConnection,
    cfg: QuantConfig,
    symbol: str | None = None,
    session: date | None = None,
) -> Figure:
    """One session of 1-minute bars in exchange time: close and volume, lunch break shaded."""
    symbol = symbol or research_symbol(con, cfg)
    src = resolve_source(con, symbol, "1m", cfg.store.source_priority)
    day = session or full_sessions(con, symbol, src)[-1]
    bars = intraday_bars(con, symbol, "1m", start=day, end=day, source=src)
    local = bars["ts"].dt.convert_time_zone("Asia/Shanghai")
    morning = bars.filter(local.dt.hour() < 12)
    afternoon = bars.filter(local.dt.hour() >= 12)
    fig = new_figure(10, 5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    for part in (morning, afternoon):  # two lines: nothing is drawn across the break
        top.plot(part["ts"].to_list(), part["close"].to_list(), color="C0", lw=1.0)
        bottom.bar(part["ts"].to_list(), part["volume"].to_list(), width=1 / 1440, color="C1")
    if morning.height and afternoon.height:
        lunch = (morning["ts"].max(), afternoon["ts"].min())
        for ax in (top, bottom):
            ax.axvspan(*lunch, color="grey", alpha=0.2, label="lunch break 11:30-13:00")
    top.set_title(f"{symbol} 1-minute bars on {day} ({src}; {bars.height} bars, end-stamped)")
    top.set_ylabel("close, index points")
    top.legend(loc="best")
    bottom.set_ylabel("volume")
    bottom.set_xlabel("exchange time (Asia/Shanghai)")
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=EXCHANGE_TZ))
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return fig


_QUARANTINE_SQL = """
SELECT regexp_replace(path, '^.*/', '') AS file, source, symbol, frequency, field,
       split_part(reason, ':', 1) AS reason, count(*) AS rows, min(line) AS first_line,
       arg_min(raw, line) AS first_raw
FROM quarantine GROUP BY ALL ORDER BY rows DESC, file
"""


def quarantine_table(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Quarantined rows grouped by file, field and kind of reason, with the first one quoted."""
    return con.sql(_QUARANTINE_SQL).pl()


def _flatten(entry: dict[str, Any]) -> dict[str, Any]:
    diffs = entry["max_rel_diff"]
    return {
        "sources": " vs ".join(entry["sources"]),
        "common_sessions": entry["common_sessions"],
        "first": entry.get("first"),
        "last": entry.get("last"),
        **{f"max_rel_diff_{f}": diffs.get(f) for f in FIELDS},
        "worst_close_session": (entry.get("worst_session") or {}).get("close"),
    }


def reconcile_table(
    con: duckdb.DuckDBPyConnection, cfg: QuantConfig, symbol: str | None = None
) -> pl.DataFrame:
    """Each pair of daily sources, and minute bars summed to sessions, on common sessions.

    Real sources only; the synthetic market is compared with itself only when it is alone.
    """
    symbol = symbol or research_symbol(con, cfg)
    have = sources(con, symbol, "1d")
    synthetic_only = _real_first(have, cfg.store.source_priority) == [SYNTHETIC_SOURCE]
    entries = reconcile(con, symbol, include_synthetic=synthetic_only)
    entries += reconcile_intraday(con, symbol, include_synthetic=synthetic_only)
    schema: dict[str, Any] = {
        "sources": pl.String,
        "common_sessions": pl.Int64,
        "first": pl.String,
        "last": pl.String,
        **{f"max_rel_diff_{f}": pl.Float64 for f in FIELDS},
        "worst_close_session": pl.String,
    }
    return pl.DataFrame([_flatten(e) for e in entries], schema=schema)
