"""Resampling of intraday bars (bars stamped with their END time) and agreement checks."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

_AGG = [
    pl.col("open").first(),
    pl.col("high").max(),
    pl.col("low").min(),
    pl.col("close").last(),
    pl.col("volume").sum(),
    pl.col("amount").sum(),
    pl.col("open_interest").last(),
]


def _keys(df: pl.DataFrame) -> list[str]:
    return [c for c in ("symbol", "kind", "source") if c in df.columns]


def resample_intraday(bars: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """Aggregate end-stamped bars into ``minutes``-long end-stamped bars within each session.

    A 1-minute bar ending 09:31 belongs to the 5-minute bar ending 09:35: the bucket of a bar
    ending at t is ceil(t, minutes).  Whole-hour UTC offsets make UTC truncation exact.
    """
    if bars.is_empty():
        return bars
    every = f"{minutes}m"
    bucket = (pl.col("ts") - timedelta(microseconds=1)).dt.truncate(every) + timedelta(
        minutes=minutes
    )
    keys = _keys(bars)
    out = (
        bars.sort("ts")
        .with_columns(bucket.alias("_bucket"))
        .group_by([*keys, "session", "_bucket"], maintain_order=True)
        .agg(_AGG)
        .rename({"_bucket": "ts"})
    )
    if "frequency" in bars.columns:  # canonical frames carry it: relabel, don't drop it
        out = out.with_columns(pl.lit(f"{minutes}m").alias("frequency"))
    return out.select(bars.columns).sort("ts")


def intraday_to_daily(bars: pl.DataFrame) -> pl.DataFrame:
    """One row per session from intraday bars (OHLC, summed volume/amount, last open interest)."""
    keys = _keys(bars)
    return (
        bars.sort("ts")
        .group_by([*keys, "session"], maintain_order=True)
        .agg([*_AGG, pl.col("ts").max()])
        .sort("session")
    )


def resample_agreement(intraday: pl.DataFrame, daily: pl.DataFrame) -> pl.DataFrame:
    """Per-session relative differences between resampled intraday bars and daily bars.

    Returns one row per common session with ``rel_diff_<field>`` for high, low, close, volume.
    (The open is left out: the opening call auction is not in every minute feed.)
    """
    agg = intraday_to_daily(intraday).select("session", "high", "low", "close", "volume")
    d = daily.select("session", "high", "low", "close", "volume")
    joined = agg.join(d, on="session", suffix="_daily")
    return joined.select(
        "session",
        *[
            ((pl.col(f) - pl.col(f"{f}_daily")).abs() / pl.col(f"{f}_daily").abs()).alias(
                f"rel_diff_{f}"
            )
            for f in ("high", "low", "close", "volume")
        ],
    )
