"""Row validation against the bar rules (``feeds.bar_rules``) and duplicate keys.

``validate`` splits parsed rows into bars that may land and rejected rows with a reason and a
field; nothing is dropped silently.  Parse errors first, then the rules in the order of
``feeds.bar_rules.RULES`` (finite numbers, positive prices, non-negative volume/amount/open
interest, OHLC consistency, the calendar's holiday horizon, trading day, session time on the
``feeds.session`` grid of the bar's kind and session), then duplicate keys within the file (the
first occurrence is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from feeds.bar_rules import polars_rules
from feeds.schema import BAR_COLUMNS
from feeds.series import Factorized, distinct, factorize
from feeds.writer import KEY_SERIES, SERIES_COLUMNS


@dataclass(frozen=True)
class Validated:
    bars: pl.DataFrame  # canonical BAR_COLUMNS plus _line
    rejected: pl.DataFrame  # _line, _raw, symbol, frequency, source, _field, _reason
    series: Factorized  # ``factorize(bars, SERIES_COLUMNS)``: each bar's series


def _key_series(f: Factorized, rows: pl.DataFrame) -> Factorized:
    """The rows' (symbol, frequency, source) factorised, from their factorised series ``f``
    (``SERIES_COLUMNS``): a gather through the few distinct series, not a pass over the rows
    (unless two series share a key under different kinds, when the rows are factorised)."""
    keys = f.values.select(KEY_SERIES)
    if keys.unique().height < keys.height:
        return factorize(rows, KEY_SERIES)
    return Factorized(keys, f.codes, f.blocks)


def _strictly_increasing(ok: pl.DataFrame, f: Factorized) -> bool:
    """Each series (``f``: its codes) in one block whose bar ends strictly increase (the usual
    vendor file, of one series or several one after another): no key repeats, known in O(n)."""
    if ok.height < 2:
        return True
    if not f.blocks:
        return False
    us = ok["ts"].dt.epoch("us").to_numpy()
    codes = f.codes.to_numpy()
    back = us[1:] <= us[:-1]  # a bar end not after the one before: it must start a block
    return bool(np.all(codes[1:][back] != codes[:-1][back]))


def _repeated(ok: pl.DataFrame, f: Factorized) -> pl.Series:
    """Rows whose (series, ts) key another row has.

    Each key is one integer (the bar end's microseconds from the first one, times the series
    count, plus the series' code) when it fits in 63 bits; equal keys are neighbours once the
    keys are sorted.  A stable sort (numpy's timsort) runs in near-linear time on the almost
    ordered keys of a vendor file, several times faster than hashing every key (polars'
    ``is_duplicated``) or a struct of the key columns (the fallback).
    """
    us = ok["ts"].dt.epoch("us")
    lo, hi = int(us.min()), int(us.max())  # type: ignore[arg-type]
    n = f.values.height
    if n * (hi - lo + 1) >= 2**62:
        return ok.select(pl.struct(*KEY_SERIES, "ts").is_duplicated()).to_series()
    key = ((us - lo) * n + f.codes.cast(pl.Int64)).to_numpy()
    if not np.any(np.diff(np.sort(key, kind="stable")) == 0):  # the usual file: none repeats
        return pl.Series("ts", np.zeros(key.size, dtype=bool))
    order = np.argsort(key, kind="stable")
    same = key[order[1:]] == key[order[:-1]]  # sorted neighbours with one key
    repeated = np.zeros(key.size, dtype=bool)
    repeated[order[1:][same]] = True
    repeated[order[:-1][same]] = True
    return pl.Series("ts", repeated)


def validate(rows: pl.DataFrame, frequency_minutes: int) -> Validated:
    """Split parsed ``rows`` into landing bars and quarantined rows (with reasons)."""
    kinds = distinct(rows, ["kind"])["kind"].to_list() if "kind" in rows.columns else None
    rules = polars_rules(frequency_minutes, rows.columns, kinds)
    # Cheap pass: index of the first failing rule per row; messages only for the few bad rows.
    # Lazy, so that polars computes the terms several rules share (the bar end's local minute)
    # once: an eager ``with_columns`` does not, and took twice the CPU time.
    first_bad = pl.coalesce(
        *[pl.when(bad.fill_null(False)).then(pl.lit(i)) for i, (bad, _, _) in enumerate(rules)]
    )
    # Only the rule column comes from the lazy pass: it may return its columns in several
    # chunks, and the rows keep theirs (the writer cuts store row groups along them).
    rule = rows.lazy().select(first_bad.alias("_rule")).collect().to_series()
    flagged = rows.with_columns(rule)
    is_ok = pl.col("_reason").is_null() & pl.col("_rule").is_null()
    bad_rows = flagged.filter(~is_ok)
    reason = pl.coalesce(
        pl.col("_reason"),
        *[pl.when(pl.col("_rule") == i).then(msg) for i, (_, _, msg) in enumerate(rules)],
    )
    field = pl.coalesce(
        pl.col("_field"),
        *[pl.when(pl.col("_rule") == i).then(pl.lit(f)) for i, (_, f, _) in enumerate(rules)],
    )
    checked_bad = bad_rows.with_columns(reason.alias("_reason"), field.alias("_field"))
    key = [*KEY_SERIES, "ts"]
    ok = flagged.filter(is_ok)
    series = factorize(ok, SERIES_COLUMNS)
    keyed = _key_series(series, ok)
    # the usual vendor file repeats no key, which one pass shows
    dup_mask = None if _strictly_increasing(ok, keyed) else _repeated(ok, keyed)
    if dup_mask is not None and dup_mask.any():
        first_line = pl.col("_line").first().over(key)
        dups = ok.filter(dup_mask).with_columns(first_line.alias("_first"))
        dups = dups.filter(pl.col("_line") != pl.col("_first"))
        ok = ok.join(dups.select("_line"), on="_line", how="anti")
        series = factorize(ok, SERIES_COLUMNS)
    else:
        dups = ok.clear().with_columns(pl.lit(0, pl.Int64).alias("_first"))
    dup = dups.with_columns(
        pl.format("duplicate key: same bar as line {}", pl.col("_first")).alias("_reason"),
        pl.lit("ts").alias("_field"),
    )
    bars = ok.select("_line", *BAR_COLUMNS)
    reject_cols = ["_line", "_raw", "symbol", "frequency", "source", "_field", "_reason"]
    rejected = pl.concat(
        [
            checked_bad.select(reject_cols),
            dup.select(reject_cols),
        ]
    ).sort("_line")
    return Validated(bars=bars, rejected=rejected, series=series)
