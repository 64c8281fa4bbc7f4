"""Row validation against price rules and the XSHG calendar.

``validate`` splits parsed rows into bars that may land and rejected rows with a reason and a
field; nothing is dropped silently.  Rules, in order: parse errors, finite numbers, positive
prices, non-negative volume/amount/open interest, OHLC consistency, trading day, session time
(lunch break included; index futures traded 09:15-11:30 / 13:00-15:15 before 2016), and
duplicate keys within the file (the first occurrence is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from feeds.calendar import EXCHANGE_TZ, FUTURES_SESSION_CHANGE, all_trading_days
from feeds.schema import BAR_COLUMNS, InstrumentKind


@dataclass(frozen=True)
class Validated:
    bars: pl.DataFrame  # canonical BAR_COLUMNS plus _line
    rejected: pl.DataFrame  # _line, _raw, symbol, frequency, source, _field, _reason


def _rules(frequency_minutes: int) -> list[tuple[pl.Expr, str, pl.Expr | str]]:
    prices = ("open", "high", "low", "close")
    rules: list[tuple[pl.Expr, str, pl.Expr | str]] = []
    for c in (*prices, "volume", "amount", "open_interest"):
        rules.append((pl.col(c).is_nan() | pl.col(c).is_infinite(), c, "non-finite value"))
    for c in prices:
        rules.append((pl.col(c) <= 0, c, pl.format("non-positive price {}", pl.col(c))))
    for c in ("volume", "amount", "open_interest"):
        rules.append((pl.col(c) < 0, c, pl.format("negative {} {}", pl.lit(c), pl.col(c))))
    hi, lo = pl.col("high"), pl.col("low")
    rules.append(
        (
            hi < pl.max_horizontal("open", "close", "low"),
            "high",
            pl.format("high {} below max(open, close, low)", hi),
        )
    )
    rules.append(
        (
            lo > pl.min_horizontal("open", "close"),
            "low",
            pl.format("low {} above min(open, close)", lo),
        )
    )
    trading = pl.Series("d", all_trading_days(), dtype=pl.Date)
    rules.append(
        (
            ~pl.col("session").is_in(trading.implode()),
            "session",
            pl.format("{} is not an XSHG trading day", pl.col("session")),
        )
    )
    if frequency_minutes:
        local = pl.col("ts").dt.convert_time_zone(str(EXCHANGE_TZ))
        mod = local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)
        pre2016_future = (pl.col("kind") == InstrumentKind.INDEX_FUTURE.value) & (
            pl.col("session") < FUTURES_SESSION_CHANGE
        )
        am_open = pl.when(pre2016_future).then(9 * 60 + 15).otherwise(9 * 60 + 30)
        pm_close = pl.when(pre2016_future).then(15 * 60 + 15).otherwise(15 * 60)
        first_end = am_open + frequency_minutes
        in_session = ((mod >= first_end) & (mod <= 11 * 60 + 30)) | (
            (mod >= 13 * 60 + frequency_minutes) & (mod <= pm_close)
        )
        aligned = (mod % frequency_minutes == 0) & (local.dt.second() == 0)
        rules.append(
            (
                ~(in_session & aligned),
                "datetime",
                pl.format("bar end {} outside the trading session", local.dt.strftime("%H:%M:%S")),
            )
        )
    return rules


def validate(rows: pl.DataFrame, frequency_minutes: int) -> Validated:
    """Split parsed ``rows`` into landing bars and quarantined rows (with reasons)."""
    rules = _rules(frequency_minutes)
    reason = pl.coalesce(
        pl.col("_reason"),
        *[
            pl.when(bad.fill_null(False)).then(msg if isinstance(msg, pl.Expr) else pl.lit(msg))
            for bad, _, msg in rules
        ],
    )
    field = pl.coalesce(
        pl.col("_field"), *[pl.when(bad.fill_null(False)).then(pl.lit(f)) for bad, f, _ in rules]
    )
    checked = rows.with_columns(reason.alias("_reason"), field.alias("_field"))
    key = ["symbol", "frequency", "source", "ts"]
    ok = checked.filter(pl.col("_reason").is_null())
    first_line = pl.col("_line").first().over(key)
    ok = ok.with_columns(first_line.alias("_first"))
    dup = ok.filter(pl.col("_line") != pl.col("_first")).with_columns(
        pl.format("duplicate key: same bar as line {}", pl.col("_first")).alias("_reason"),
        pl.lit("ts").alias("_field"),
    )
    bars = ok.filter(pl.col("_line") == pl.col("_first")).select("_line", *BAR_COLUMNS)
    reject_cols = ["_line", "_raw", "symbol", "frequency", "source", "_field", "_reason"]
    rejected = pl.concat(
        [
            checked.filter(pl.col("_reason").is_not_null()).select(reject_cols),
            dup.select(reject_cols),
        ]
    ).sort("_line")
    return Validated(bars=bars, rejected=rejected)
