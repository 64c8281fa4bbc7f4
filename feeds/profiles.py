"""Source profiles: declarative maps from each vendor file layout to the canonical bar schema.

A profile says which vendor column holds each canonical field, how dates are written, what unit
volume and amount are in (multipliers to shares/contracts and CNY), which columns are row-index
noise, and whether the vendor repeats its header mid-file.  ``detect_profile`` picks the profile
whose header signature matches a file; ``register_profile`` adds one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from feeds.schema import Frequency, InstrumentKind


@dataclass(frozen=True)
class SourceProfile:
    """How one vendor layout maps to the canonical schema.

    ``columns`` maps canonical fields to vendor header names.  Time is given either by ``date``
    (daily), by ``datetime``, or by ``date`` + ``time`` (intraday).  ``optional`` maps canonical
    fields to header names that are read when the file has them (``amount``, ``open_interest``,
    ``kind``, ``source``).  Unit multipliers convert volume to shares (index/stock/ETF) or
    contracts (futures) and amount to CNY.  A header column that neither map names (nor
    ``ignored_columns``) is reported by name in the ingest summary, never dropped silently.
    """

    name: str
    source: str
    description: str
    frequency: Frequency
    kind: InstrumentKind
    columns: Mapping[str, str]
    optional: Mapping[str, str] = field(default_factory=dict)
    date_format: str = "%Y-%m-%d"
    datetime_format: str = "%Y-%m-%d %H:%M:%S"
    time_format: str = "%H:%M:%S"
    symbol: str | None = None  # symbol when the file carries none (overridable)
    volume_multiplier: float = 1.0
    amount_multiplier: float = 1.0
    repeated_header: bool = False  # vendor appends downloads; repeated headers are dropped
    ignored_columns: tuple[str, ...] = ()  # e.g. a blank-named pandas row index
    file_format: str = "csv"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required(self) -> frozenset[str]:
        """Vendor header names that must all be present for this profile."""
        return frozenset(self.columns.values())


_OHLC = {"open": "open", "high": "high", "low": "low", "close": "close"}
# Canonical optional columns, read under their own names wherever a plain file carries them.
OPTIONAL_CANONICAL = {c: c for c in ("amount", "open_interest", "kind", "source")}

_PROFILES: dict[str, SourceProfile] = {}


def register_profile(profile: SourceProfile) -> SourceProfile:
    if profile.name in _PROFILES:
        raise ValueError(f"profile {profile.name!r} is already registered")
    _PROFILES[profile.name] = profile
    return profile


def profiles() -> Mapping[str, SourceProfile]:
    """All registered profiles by name (read-only view)."""
    return MappingProxyType(_PROFILES)


def get_profile(name: str) -> SourceProfile:
    try:
        return _PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(sorted(_PROFILES))}") from None


def detect_profile(header: list[str], file_format: str = "csv") -> SourceProfile | None:
    """The most specific profile whose required columns all appear in ``header``."""
    have = {h.strip() for h in header}
    matches = [p for p in _PROFILES.values() if p.file_format == file_format and p.required <= have]
    if not matches:
        return None
    return max(matches, key=lambda p: len(p.required))


register_profile(
    SourceProfile(
        name="wind_daily",
        source="wind",
        description="Wind terminal daily export (blank-named date column, upper-case fields)",
        frequency=Frequency.DAILY,
        kind=InstrumentKind.INDEX,
        columns={
            "date": "",
            "open": "OPEN",
            "high": "HIGH",
            "low": "LOW",
            "close": "CLOSE",
            "volume": "VOLUME",
            "amount": "AMT",
        },
        symbol="000300.SH",
        notes=("VOLUME in shares, AMT in CNY; VWAP is CNY per share, not index points",),
    )
)
register_profile(
    SourceProfile(
        name="eastmoney_daily",
        source="eastmoney",
        description="Eastmoney / AkShare index_zh_a_hist daily bars with Chinese headers",
        frequency=Frequency.DAILY,
        kind=InstrumentKind.INDEX,
        columns={
            "date": "日期",
            "open": "开盘",
            "close": "收盘",
            "high": "最高",
            "low": "最低",
            "volume": "成交量",
            "amount": "成交额",
        },
        symbol="000300.SH",
        volume_multiplier=100.0,  # lots of 100 shares -> shares
        notes=("close precedes high/low in column order", "rows before 2005-04-08 are backfill"),
    )
)
register_profile(
    SourceProfile(
        name="sina_futures_1m",
        source="sina",
        description="Sina futures_zh_minute_sina 1-minute bars (appended downloads, row index)",
        frequency=Frequency.MINUTE,
        kind=InstrumentKind.INDEX_FUTURE,
        columns={"datetime": "datetime", **_OHLC, "volume": "volume", "open_interest": "hold"},
        symbol="IF.CFE",
        repeated_header=True,
        ignored_columns=("",),
        notes=(
            "volume and hold in contracts; bars stamped with their end time",
            "overlapping contracts in appended segments: later duplicates are quarantined",
        ),
    )
)
register_profile(
    SourceProfile(
        name="sina_index_1m",
        source="sina",
        description="Sina stock_zh_a_minute 1-minute index bars (column 'day')",
        frequency=Frequency.MINUTE,
        kind=InstrumentKind.INDEX,
        columns={"datetime": "day", **_OHLC, "volume": "volume"},
        symbol="000300.SH",
        notes=("no 14:59 bar: 14:57-15:00 is the closing call auction, stamped 15:00",),
    )
)
register_profile(
    SourceProfile(
        name="terminal_5m",
        source="wondertrader",
        description="Desktop-terminal export <Date>, <Time>, <Open>, ... (CRLF, space after comma)",
        frequency=Frequency.FIVE_MINUTE,
        kind=InstrumentKind.INDEX_FUTURE,
        columns={
            "date": "<Date>",
            "time": "<Time>",
            "open": "<Open>",
            "high": "<High>",
            "low": "<Low>",
            "close": "<Close>",
            "volume": "<Volume>",
        },
        date_format="%Y/%m/%d",
        symbol="IF.CFE",
        notes=(
            "main-contract splice, not back-adjusted: roll days jump",
            "2014-2015 session cut to 09:30-15:00 (09:15-09:30 and 15:00-15:15 absent)",
        ),
    )
)
register_profile(
    SourceProfile(
        name="tushare_daily",
        source="tushare",
        description="Tushare pro_bar daily bars (ts_code, trade_date YYYYMMDD, vol in lots)",
        frequency=Frequency.DAILY,
        kind=InstrumentKind.STOCK,
        columns={
            "symbol": "ts_code",
            "date": "trade_date",
            **_OHLC,
            "volume": "vol",
            "amount": "amount",
        },
        date_format="%Y%m%d",
        volume_multiplier=100.0,  # lots -> shares
        amount_multiplier=1000.0,  # thousand CNY -> CNY
        ignored_columns=("",),
        notes=("prices forward-adjusted (qfq) to the file's last date",),
    )
)
register_profile(
    SourceProfile(
        name="plain_daily",
        source="plain",
        description="Plain CSV: date,open,high,low,close,volume[,amount,open_interest,kind,"
        "source,symbol] (symbol via --symbol or column)",
        frequency=Frequency.DAILY,
        kind=InstrumentKind.INDEX,
        columns={"date": "date", **_OHLC, "volume": "volume"},
        optional=OPTIONAL_CANONICAL,
        notes=("amount in CNY; without amount the forecaster drops its turnover feature",),
    )
)
register_profile(
    SourceProfile(
        name="parquet",
        source="parquet",
        description="Parquet in the canonical layout: symbol, date or ts (tz-aware), OHLC, volume",
        frequency=Frequency.DAILY,
        kind=InstrumentKind.INDEX,
        columns={"symbol": "symbol", **_OHLC, "volume": "volume"},
        optional=OPTIONAL_CANONICAL,
        file_format="parquet",
        notes=("optional columns: kind, frequency, amount, open_interest, source",),
    )
)
