"""Resampling of intraday bars (bars stamped with their END time) and agreement checks.

The one bucket rule: a bar ending at t belongs to the bar ending ``bucket_end(t)``, the next
multiple of the bar length (1m -> 5m: 09:31..09:35 -> 09:35).  ``resample_intraday`` applies it
to polars frames (store reads, training), ``resample_arrays`` to numpy arrays (the serving
features); ``with_resampled`` is the one fallback policy when coarser bars are missing: the
stored sessions win, every other session is resampled from the finer bars.
"""

from __future__ import annotations

from typing import Any

import numpy as np
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


def bucket_end(epoch: Any, step: int) -> Any:
    """End of the ``step``-long bucket of a bar ending at ``epoch`` (integer epoch units).

    ceil(epoch / step) * step on numpy integer arrays and polars integer expressions alike.
    Whole-hour UTC offsets make buckets of UTC epochs the exchange-time buckets.
    """
    return -(-epoch // step) * step


def resample_intraday(bars: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """Aggregate end-stamped bars into ``minutes``-long end-stamped bars within each session."""
    if bars.is_empty():
        return bars
    dtype = bars.schema["ts"]
    assert isinstance(dtype, pl.Datetime)
    end_us = bucket_end(pl.col("ts").dt.epoch("us"), minutes * 60_000_000)
    bucket = pl.from_epoch(end_us, time_unit="us")
    if dtype.time_zone is not None:
        bucket = bucket.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
    bucket = bucket.cast(dtype)
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


def resample_arrays(
    ts: np.ndarray, minutes: int, *values: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``resample_intraday`` of one ascending series as arrays: (bucket ends, aggregated values).

    ``ts`` is int64 epoch seconds of the bar ends; ``values`` are open, high, low, close and any
    summed quantities after them (volume...), aggregated as in ``resample_intraday``.
    """
    if minutes == 1 or ts.size == 0:
        return ts, values
    bucket = bucket_end(ts, minutes * 60)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], ts.size] - 1
    o, h, lo, c, *summed = values
    return bucket[starts], (
        o[starts],
        np.maximum.reduceat(h, starts),
        np.minimum.reduceat(lo, starts),
        c[ends],
        *(np.add.reduceat(x, starts) for x in summed),
    )


def with_resampled(native: pl.DataFrame | None, finer: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """``minutes`` bars: ``native`` as stored plus ``finer`` resampled for every other session.

    The one fallback policy for a series whose coarser bars are missing on some sessions (e.g.
    IF expiry weeks that only have 1-minute bars): a stored session is never recomputed.
    """
    have = native.get_column("session").unique() if native is not None else None
    extra = finer if have is None else finer.filter(~pl.col("session").is_in(have.implode()))
    parts = [p for p in (native, resample_intraday(extra, minutes)) if p is not None]
    parts = [p for p in parts if not p.is_empty()] or parts[:1]
    return pl.concat(parts, how="vertical_relaxed").sort("ts")


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
