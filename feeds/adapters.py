"""Feed adapters: fetch bars from a vendor API in a known file layout, then ingest like a file.

Adapters return the vendor's own layout (the same columns its CSV exports carry) so that the
source profile that maps those files maps the fetched rows too: one mapping per layout.
The ``akshare`` adapter needs the optional ``akshare`` extra and internet; no test needs it.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from feeds.ingest import IngestReport, ingest_file


@dataclass(frozen=True)
class FeedAdapter:
    """A named fetcher returning (header, rows) in the layout of ``profile``."""

    name: str
    profile: str
    description: str
    fetch: Callable[[str, date, date], tuple[list[str], list[list[Any]]]]


_ADAPTERS: dict[str, FeedAdapter] = {}


def register_adapter(adapter: FeedAdapter) -> FeedAdapter:
    if adapter.name in _ADAPTERS:
        raise ValueError(f"adapter {adapter.name!r} is already registered")
    _ADAPTERS[adapter.name] = adapter
    return adapter


def adapters() -> dict[str, FeedAdapter]:
    return dict(_ADAPTERS)


def to_csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    """Render fetched rows as the vendor's CSV so the file path of ingest handles them."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def fetch_and_ingest(
    con: duckdb.DuckDBPyConnection,
    adapter: str,
    symbol: str,
    start: date,
    end: date,
    *,
    keep_dir: Path | None = None,
) -> IngestReport:
    """Fetch with ``adapter`` and ingest through its profile (one transaction, idempotent).

    The fetched CSV is kept under ``keep_dir`` (when given) so that every stored row still
    points at a file and line.
    """
    try:
        a = _ADAPTERS[adapter]
    except KeyError:
        raise KeyError(
            f"unknown adapter {adapter!r}; known: {', '.join(sorted(_ADAPTERS))}"
        ) from None
    header, rows = a.fetch(symbol, start, end)
    data = to_csv_bytes(header, rows)
    directory = keep_dir or Path(tempfile.mkdtemp(prefix="quant-fetch-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{adapter}_{symbol}_{start}_{end}.csv"
    path.write_bytes(data)
    return ingest_file(con, path, profile=a.profile, symbol=symbol)


def _akshare_index_daily(symbol: str, start: date, end: date) -> tuple[list[str], list[list[Any]]]:
    import akshare as ak  # optional extra: pip install '.[akshare]'

    code = symbol.split(".")[0]
    df = ak.index_zh_a_hist(
        symbol=code, period="daily", start_date=f"{start:%Y%m%d}", end_date=f"{end:%Y%m%d}"
    )
    return [str(c) for c in df.columns], df.astype(str).values.tolist()


def _akshare_futures_1m(symbol: str, start: date, end: date) -> tuple[list[str], list[list[Any]]]:
    import akshare as ak

    df = ak.futures_zh_minute_sina(symbol=symbol.split(".")[0], period="1")
    df = df[(df["datetime"] >= f"{start}") & (df["datetime"] <= f"{end} 23:59:59")]
    return ["", *map(str, df.columns)], [[i, *r] for i, r in enumerate(df.astype(str).values)]


register_adapter(
    FeedAdapter(
        "akshare-index-daily",
        "eastmoney_daily",
        "AkShare index_zh_a_hist (Eastmoney daily layout)",
        _akshare_index_daily,
    )
)
register_adapter(
    FeedAdapter(
        "akshare-futures-1m",
        "sina_futures_1m",
        "AkShare futures_zh_minute_sina (Sina 1-minute layout; e.g. IF2506 -> symbol IF2506.CFE)",
        _akshare_futures_1m,
    )
)
