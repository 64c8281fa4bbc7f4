"""Forward-looking targets.  The ONLY module that looks past the decision session.

Do not import this from anything that builds features: a label is the future by definition.
"""

from __future__ import annotations

import polars as pl


def next_direction(daily: pl.DataFrame, horizon: int = 1) -> pl.DataFrame:
    """``session`` (decision session t), ``label``: 1 if close[t+h] > close[t], else 0, and
    ``label_session`` (t+h, the session whose close settles the label).

    Rows are sessions of ``daily`` in order; h counts rows (sessions), not calendar days.  The
    last ``horizon`` sessions have no realised label yet and are dropped.  A flat close is 0.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    d = daily.sort("session")
    future_close = pl.col("close").shift(-horizon)  # the look-ahead, in plain sight
    return d.select(
        "session",
        (future_close > pl.col("close")).cast(pl.Int8).alias("label"),
        pl.col("session").shift(-horizon).alias("label_session"),
    ).head(max(d.height - horizon, 0))
