"""Forward-looking targets.  The ONLY module that looks past the decision session.

Do not import this from anything that builds features: a label is the future by definition.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from feeds.calendar import all_trading_days
from models.features import Windows


def next_direction(daily: pl.DataFrame, horizon: int = 1) -> pl.DataFrame:
    """``session`` (decision session t), ``label``: 1 if close[t+h] > close[t], else 0, and
    ``label_session`` (t+h, the session whose close settles the label).

    t+h is the h-th XSHG session after t on the exchange calendar, not the h-th row: when that
    session's bar is missing (a gap in the file; ``quant ingest`` names it), t has no label
    rather than a label spanning more sessions.  Sessions whose t+h has not traded yet (the last
    ``horizon``) have no label either.  A flat close is 0.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    d = daily.sort("session")
    cal = np.array(all_trading_days(), dtype="datetime64[D]")
    days = d.get_column("session").to_numpy().astype("datetime64[D]")
    pos = np.searchsorted(cal, days) + horizon
    target = np.where(pos < len(cal), cal[np.minimum(pos, len(cal) - 1)], np.datetime64("NaT"))
    future = d.select(
        pl.col("session").alias("label_session"), pl.col("close").alias("_future_close")
    )
    return (
        d.select("session", "close")
        .with_columns(pl.Series("label_session", target, dtype=pl.Date))
        .join(future, on="label_session", how="inner", maintain_order="left")
        .select(
            "session",
            # the look-ahead, in plain sight: the close of the next XSHG session
            (pl.col("_future_close") > pl.col("close")).cast(pl.Int8).alias("label"),
            "label_session",
        )
    )


class Labelled(NamedTuple):
    windows: Windows  # the windows whose decision session has a settled label, in order
    labels: np.ndarray  # [N] int64, the label of each
    settled: np.ndarray  # [N] datetime64[D], the session whose close settles each label


def labelled(windows: Windows, labels: pl.DataFrame) -> Labelled:
    """Line ``labels`` (from ``next_direction``) up with ``windows``: the one place that does.

    Windows without a settled label (the newest ``horizon`` sessions, a gap) are dropped."""
    lab = pl.DataFrame({"session": windows.sessions.astype("datetime64[D]")}).join(
        labels.select("session", "label", "label_session"),
        on="session",
        how="left",
        maintain_order="left",
    )
    keep = lab.get_column("label").is_not_null().to_numpy()
    got = lab.filter(pl.col("label").is_not_null())
    return Labelled(
        windows.take(np.flatnonzero(keep)),
        got.get_column("label").to_numpy().astype(np.int64),
        got.get_column("label_session").to_numpy().astype("datetime64[D]"),
    )
