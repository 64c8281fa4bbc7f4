"""Feed adapters: fetch bars from a vendor API in a known file layout, then ingest like a file.

Adapters return the vendor's own layout (the same columns its CSV exports carry) so that the
source profile that maps those files maps the fetched rows too: one mapping per layout.  Every
vendor call goes through ``feeds.vendor.call_vendor`` (timeout, bounded retries with backoff,
clear ``FeedError``).  The AkShare adapters need the optional ``akshare`` extra and the network;
tests hand them a recorded vendor instead, so the parsing below is what runs in production.

- ``akshare-index-daily``: CSI 300 daily bars (Eastmoney ``index_zh_a_hist``).
- ``akshare-index-1m``: CSI 300 1-minute bars (Sina ``stock_zh_a_minute``).
- ``akshare-if-main-1m``: the IF main contract's 1-minute bars (Sina ``futures_zh_minute_sina``),
  the contract chosen per session as the largest open interest (or volume) in the exchange's
  daily data of the PREVIOUS session (``get_cffex_daily``, known before the open).  One contract
  per session, recorded per session in ``feed_contracts``; the intraday features read returns
  within a session only, so a roll between sessions is never read as a move.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from feeds.calendar import previous_trading_day, trading_days
from feeds.ingest import IngestReport, ingest_file
from feeds.schema import FEED_CONTRACTS, create_tables
from feeds.vendor import FeedError, FeedNotReady, FetchPolicy, call_vendor, check_frame, load_vendor


@dataclass(frozen=True)
class Fetched:
    """Rows in a vendor layout, and for a continuous futures series the contract per session."""

    header: list[str]
    rows: list[list[Any]]
    contracts: dict[date, tuple[str, str]] = field(default_factory=dict)  # session: (code, why)


Fetch = Callable[..., Fetched]  # (vendor, symbol, start, end, policy[, main_by]) -> Fetched


@dataclass(frozen=True)
class FeedAdapter:
    """A named fetcher ``fetch(vendor, symbol, start, end, policy)`` in ``profile``'s layout."""

    name: str
    profile: str
    description: str
    fetch: Fetch
    frequency: str = "1d"
    main_contract: bool = False  # fetch also takes main_by (continuous futures series)


_ADAPTERS: dict[str, FeedAdapter] = {}


def register_adapter(adapter: FeedAdapter) -> FeedAdapter:
    if adapter.name in _ADAPTERS:
        raise ValueError(f"adapter {adapter.name!r} is already registered")
    _ADAPTERS[adapter.name] = adapter
    return adapter


def adapters() -> dict[str, FeedAdapter]:
    return dict(_ADAPTERS)


def get_adapter(name: str) -> FeedAdapter:
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown adapter {name!r}; known: {', '.join(sorted(_ADAPTERS))}") from None


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
    keep_dir: Path,
    vendor: Any = None,
    policy: FetchPolicy | None = None,
    main_by: str = "open_interest",
) -> IngestReport:
    """Fetch with ``adapter`` and ingest through its profile (one transaction, idempotent).

    The fetched CSV is kept under ``keep_dir`` (its name carries the content hash) so that every
    stored row still points at a file and line; a futures adapter's contract per session commits
    in the same transaction as the bars.  ``vendor`` defaults to the ``akshare`` module.
    """
    a = get_adapter(adapter)
    v = vendor if vendor is not None else load_vendor()
    opts = {"main_by": main_by} if a.main_contract else {}
    got = a.fetch(v, symbol, start, end, policy or FetchPolicy(), **opts)
    if not got.rows:
        raise FeedNotReady(f"{adapter} {symbol}: no bars for {start}..{end} yet")
    data = to_csv_bytes(got.header, got.rows)
    keep_dir.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(data).hexdigest()[:12]
    path = keep_dir / f"{adapter}_{symbol}_{start}_{end}_{sha}.csv"
    if not path.exists():
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)

    def record(c: duckdb.DuckDBPyConnection) -> None:
        create_tables(c, (FEED_CONTRACTS,))
        now = datetime.now(UTC)
        for session, (code, rule) in sorted(got.contracts.items()):
            c.execute(
                "INSERT OR REPLACE INTO feed_contracts VALUES (?, ?, ?, ?, ?, ?, ?)",
                [symbol, a.frequency, _source(a), session, code, rule, now],
            ).fetchall()

    return ingest_file(con, path, profile=a.profile, symbol=symbol, also=record)


def _source(a: FeedAdapter) -> str:
    from feeds.profiles import get_profile

    return get_profile(a.profile).source


def contracts(con: duckdb.DuckDBPyConnection, symbol: str) -> list[tuple[date, str, str]]:
    """(session, contract, rule) recorded for a continuous futures ``symbol``, oldest first."""
    create_tables(con, (FEED_CONTRACTS,))
    rows = con.execute(
        "SELECT session, contract, rule FROM feed_contracts WHERE symbol = ? ORDER BY session",
        [symbol],
    ).fetchall()
    return [(s, c, r) for s, c, r in rows]


# --- AkShare -------------------------------------------------------------------------------

_EASTMONEY_DAILY = ["日期", "开盘", "收盘", "最高", "最低", "成交量", "成交额"]
_SINA_INDEX_1M = ["day", "open", "high", "low", "close", "volume"]
_SINA_FUTURES_1M = ["datetime", "open", "high", "low", "close", "volume", "hold"]
_CFFEX_DAILY = ["symbol", "variety", "volume", "open_interest"]


def _code(symbol: str) -> str:
    return symbol.split(".")[0]


def _sina_code(symbol: str) -> str:
    code, _, market = symbol.partition(".")
    return {"SH": "sh", "SZ": "sz"}.get(market.upper(), "sh") + code


def _check_not_stale(rows: list[list[Any]], what: str) -> None:
    """The newest daily row must not repeat the one before it exactly (a vendor's stale copy)."""
    if len(rows) >= 2 and rows[-1][1:] == rows[-2][1:]:
        raise FeedError(
            f"{what}: the bar of {rows[-1][0]} repeats the bar of {rows[-2][0]} exactly "
            "(yesterday's bar served as today's)"
        )


def akshare_index_daily(
    vendor: Any, symbol: str, start: date, end: date, policy: FetchPolicy
) -> Fetched:
    # One session more than asked, so today's bar can be compared with yesterday's.
    first = previous_trading_day(start)
    what = f"index_zh_a_hist {symbol} {start}..{end}"
    df = call_vendor(vendor, "index_zh_a_hist", policy, symbol=_code(symbol), period="daily",
                     start_date=f"{first:%Y%m%d}", end_date=f"{end:%Y%m%d}")  # fmt: skip
    df = check_frame(df, _EASTMONEY_DAILY, what)
    rows = [[str(r[0])[:10], *r[1:]] for r in df[_EASTMONEY_DAILY].astype(str).values.tolist()]
    rows.sort(key=lambda r: r[0])
    newest = rows[-1][0]
    if newest < end.isoformat():
        raise FeedNotReady(f"{what}: newest bar is {newest}, none for {end} yet")
    _check_not_stale(rows, what)
    return Fetched(_EASTMONEY_DAILY, [r for r in rows if start.isoformat() <= r[0] <= str(end)])


def _check_complete(last_stamp: str, end: date, what: str) -> None:
    if last_stamp[:10] < end.isoformat() or last_stamp[11:16] < "15:00":
        raise FeedNotReady(f"{what}: bars end at {last_stamp}, before the close of {end}")


def akshare_index_1m(
    vendor: Any, symbol: str, start: date, end: date, policy: FetchPolicy
) -> Fetched:
    what = f"stock_zh_a_minute {symbol} {start}..{end}"
    df = call_vendor(vendor, "stock_zh_a_minute", policy, symbol=_sina_code(symbol), period="1",
                     adjust="")  # fmt: skip
    df = check_frame(df, _SINA_INDEX_1M, what)
    rows = [r for r in df[_SINA_INDEX_1M].astype(str).values.tolist()
            if start.isoformat() <= r[0][:10] <= end.isoformat()]  # fmt: skip
    if not rows:
        raise FeedNotReady(f"{what}: no 1-minute bars for {start}..{end} yet")
    rows.sort(key=lambda r: r[0])
    _check_complete(rows[-1][0], end, what)
    return Fetched(_SINA_INDEX_1M, rows)


def main_contract(
    vendor: Any, root: str, session: date, policy: FetchPolicy, by: str = "open_interest"
) -> tuple[str, str]:
    """(contract, rule): the ``root`` contract largest by ``by`` on the session before."""
    basis = previous_trading_day(session)
    what = f"get_cffex_daily {basis}"
    df = check_frame(call_vendor(vendor, "get_cffex_daily", policy, date=f"{basis:%Y%m%d}"),
                     _CFFEX_DAILY, what)  # fmt: skip
    other = "volume" if by == "open_interest" else "open_interest"
    best: tuple[float, float, str] | None = None
    for sym, variety, vol, oi in df[_CFFEX_DAILY].values.tolist():
        if str(variety).upper() != root.upper():
            continue
        vals = {"volume": float(vol), "open_interest": float(oi)}
        key = (vals[by], vals[other], str(sym).upper())
        best = key if best is None or key > best else best
    if best is None:
        raise FeedError(f"{what}: no {root} contract in the exchange's daily data")
    return best[2], f"largest {by} on {basis}"


def akshare_futures_main_1m(
    vendor: Any,
    symbol: str,
    start: date,
    end: date,
    policy: FetchPolicy,
    main_by: str = "open_interest",
) -> Fetched:
    root = _code(symbol)  # IF.CFE -> IF
    header = ["", *_SINA_FUTURES_1M]
    rows: list[list[Any]] = []
    chosen: dict[date, tuple[str, str]] = {}
    frames: dict[str, list[list[str]]] = {}
    for session in trading_days(start, end):
        code, rule = main_contract(vendor, root, session, policy, main_by)
        what = f"futures_zh_minute_sina {code} {session}"
        if code not in frames:
            df = call_vendor(vendor, "futures_zh_minute_sina", policy, symbol=code, period="1")
            frames[code] = (
                check_frame(df, _SINA_FUTURES_1M, what)[_SINA_FUTURES_1M]
                .astype(str)
                .values.tolist()
            )
        day = sorted(r for r in frames[code] if r[0][:10] == session.isoformat())
        if not day:
            raise FeedNotReady(f"{what}: no 1-minute bars of {session} yet")
        _check_complete(day[-1][0], session, what)
        rows.extend([len(rows) + i, *r] for i, r in enumerate(day))
        chosen[session] = (code, rule)
    return Fetched(header, rows, chosen)


register_adapter(
    FeedAdapter(
        "akshare-index-daily",
        "eastmoney_daily",
        "AkShare index_zh_a_hist (Eastmoney daily layout), e.g. symbol 000300.SH",
        akshare_index_daily,
        "1d",
    )
)
register_adapter(
    FeedAdapter(
        "akshare-index-1m",
        "sina_index_1m",
        "AkShare stock_zh_a_minute (Sina 1-minute index layout), e.g. symbol 000300.SH",
        akshare_index_1m,
        "1m",
    )
)
register_adapter(
    FeedAdapter(
        "akshare-if-main-1m",
        "sina_futures_1m",
        "AkShare futures_zh_minute_sina of the IF main contract (largest open interest on the "
        "previous session, get_cffex_daily), symbol IF.CFE; the contract is recorded per session",
        akshare_futures_main_1m,
        "1m",
        main_contract=True,
    )
)
