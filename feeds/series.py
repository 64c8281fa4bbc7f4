"""The distinct series of a batch of bars, found along its runs rather than by hashing every row.

A vendor file holds its series in blocks (one contract after another, each in time order), so a
batch of ~290k rows of seven series has seven runs of equal (symbol, kind, frequency, source).
Comparing each row with the one before finds the runs in one pass; only their first rows are
hashed.  The results do not depend on the order of the rows: interleaved series only make more
runs (at worst one per row, when the cost is that of hashing every row, as before).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


def _run_starts(frame: pl.DataFrame, cols: list[str], varying: list[str]) -> pl.DataFrame:
    """The first row of every run of equal ``cols`` (nulls equal), with its row number; only the
    ``varying`` ones can change from row to row (the others hold one value)."""
    changed = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift()) for c in varying])
    return frame.select(cols).with_row_index("_row").filter(changed | (pl.col("_row") == 0))


def _varying(frame: pl.DataFrame, cols: list[str]) -> list[str]:
    """The columns of ``cols`` that hold more than one value or a null (a batch of one series,
    the usual case, has none; a batch of several contracts, only its symbol): a column's minimum
    is its maximum, which polars answers without comparing rows when it knows the column is
    sorted (a column of one literal)."""
    if not frame.height:
        return []
    one = [((pl.col(c).min() == pl.col(c).max()) & (pl.col(c).null_count() == 0)) for c in cols]
    held = frame.select(pl.struct(one).alias("one")).item()
    return [c for c in cols if not held[c]]


def distinct(frame: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    """``frame.select(cols).unique()``, in order of first appearance."""
    varying = _varying(frame, cols)
    if not varying:
        return frame.select(cols).head(1)
    return _run_starts(frame, cols, varying).select(cols).unique(maintain_order=True)


@dataclass(frozen=True)
class Factorized:
    """Each row's series as a number: ``codes[i]`` is the row of ``values`` (the distinct
    ``cols``, in order of first appearance) that row ``i`` holds; ``blocks``: every value's rows
    are one run (the batch holds each series in one block)."""

    values: pl.DataFrame
    codes: pl.Series  # UInt32, one per row of the frame
    blocks: bool


def factorize(frame: pl.DataFrame, cols: list[str]) -> Factorized:
    """``frame``'s ``cols`` as codes into their distinct values (see ``Factorized``)."""
    varying = _varying(frame, cols)
    if not varying:
        return Factorized(
            frame.select(cols).head(1), pl.zeros(frame.height, pl.UInt32, eager=True), True
        )
    starts = _run_starts(frame, cols, varying)
    values = starts.select(cols).unique(maintain_order=True)
    code_of_run = (
        starts.join(values.with_row_index("_code"), on=cols, how="left", nulls_equal=True)
        .sort("_row")["_code"]
        .to_numpy()
    )
    at = starts["_row"].to_numpy().astype(np.int64)
    lengths = np.diff(np.append(at, frame.height))
    codes = pl.Series("_code", np.repeat(code_of_run, lengths), pl.UInt32)
    return Factorized(values, codes, blocks=starts.height == values.height)
