"""Predictions and bars going into a backtest: reading, the persistence predictor, validation.

Predictions have the layout ``quant evaluate`` writes: one row per (session, model) with
``session`` (date: the decision session t, whose close is when the signal is known), ``model``,
``p_up`` (float in [0, 1]) and ``label`` (1 when close[t+1] > close[t], else 0).
Every check raises ``BacktestInputError`` naming the offending rows.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from feeds.calendar import is_trading_day, trading_days
from models.labels import next_direction

PREDICTION_COLUMNS = ("session", "model", "p_up", "label")
_SHOW = 10  # offending rows quoted per error


class BacktestInputError(ValueError):
    """Predictions or bars that cannot be backtested honestly (the message names the rows)."""


def _rows(values: list[object]) -> str:
    head = ", ".join(str(v) for v in values[:_SHOW])
    return head + (f" ... ({len(values)} in all)" if len(values) > _SHOW else "")


def read_predictions(path: str | Path) -> pl.DataFrame:
    """Read a predictions file (parquet, or csv with ISO dates)."""
    p = Path(path)
    if not p.exists():
        raise BacktestInputError(f"predictions file {p} does not exist")
    if p.suffix == ".csv":
        return pl.read_csv(p, try_parse_dates=True)
    return pl.read_parquet(p)


def persistence_predictions(bars: pl.DataFrame, model: str = "persistence") -> pl.DataFrame:
    """P(up) = 1 when session t closed above t-1, else 0; labels from ``models.labels``.

    The first bar has no previous close and the last has no label yet: both are dropped.
    """
    d = bars.sort("session")
    calls = d.select(
        "session",
        (pl.col("close") > pl.col("close").shift(1)).cast(pl.Float64).alias("p_up"),
    ).slice(1)
    return (
        calls.join(next_direction(d).select("session", "label"), on="session", how="inner")
        .with_columns(pl.lit(model).alias("model"))
        .select(PREDICTION_COLUMNS)
    )


def select_model(preds: pl.DataFrame, model: str | None) -> pl.DataFrame:
    """Rows of one model; ``None`` is allowed only when the file holds a single model."""
    missing = [c for c in ("session", "p_up") if c not in preds.columns]
    if missing:
        raise BacktestInputError(f"predictions lack columns {missing}; have {preds.columns}")
    if "model" not in preds.columns:
        return preds.with_columns(pl.lit(model or "unnamed").alias("model"))
    models = sorted(preds["model"].unique().to_list())
    if model is None:
        if len(models) != 1:
            raise BacktestInputError(f"predictions hold models {models}; choose one with --model")
        return preds
    if model not in models:
        raise BacktestInputError(f"model {model!r} not in predictions; models: {models}")
    return preds.filter(pl.col("model") == model)


def validate_predictions(preds: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Check one model's predictions against the calendar and the bars; return them sorted."""
    preds = preds.with_columns(pl.col("session").cast(pl.Date), pl.col("p_up").cast(pl.Float64))
    if preds.is_empty():
        raise BacktestInputError("no predictions to backtest")
    dup = preds.filter(pl.col("session").is_duplicated())["session"].unique().sort().to_list()
    if dup:
        raise BacktestInputError(f"duplicate prediction sessions: {_rows(dup)}")
    bad_p = preds.with_row_index("row").filter(
        pl.col("p_up").is_null()
        | pl.col("p_up").is_nan()
        | (pl.col("p_up") < 0)
        | (pl.col("p_up") > 1)
    )
    if not bad_p.is_empty():
        rows = [f"row {r} ({s}: {p})" for r, s, p in bad_p.select("row", "session", "p_up").rows()]
        raise BacktestInputError(f"p_up must lie in [0, 1] without NaN: {_rows(list(rows))}")
    preds = preds.sort("session")
    sessions: list[date] = preds["session"].to_list()
    closed = [d for d in sessions if not is_trading_day(d)]
    if closed:
        raise BacktestInputError(f"predictions for non-trading days: {_rows(list(closed))}")
    have = set(sessions)
    gaps = [d for d in trading_days(sessions[0], sessions[-1]) if d not in have]
    if gaps:
        raise BacktestInputError(f"prediction gaps, trading sessions missing: {_rows(list(gaps))}")
    priced = set(bars["session"].to_list())
    unpriced = [d for d in sessions if d not in priced]
    if unpriced:
        raise BacktestInputError(f"no price bar for signal sessions: {_rows(list(unpriced))}")
    return preds


def bars_for_backtest(preds: pl.DataFrame, bars: pl.DataFrame, lag: int) -> pl.DataFrame:
    """Bars from the first signal session to the last fill session, checked for gaps.

    Signals whose fill session is past the last bar are not traded (they stay in the accuracy
    report); a session missing inside the span is an error.
    """
    first, last = preds["session"][0], preds["session"][-1]
    span = bars.filter(pl.col("session") >= first).sort("session")
    want = trading_days(first, span["session"][-1])
    have = set(span["session"].to_list())
    missing = [d for d in want if d not in have]
    if missing:
        raise BacktestInputError(f"price bars missing for sessions: {_rows(list(missing))}")
    # the last fill session: `lag` sessions after the last signal, if the bars reach it
    idx = want.index(last)
    stop = want[min(idx + lag, len(want) - 1)]
    span = span.filter(pl.col("session") <= stop)
    bad = span.filter(~(pl.col("open") > 0) | ~(pl.col("close") > 0) | pl.col("open").is_nan())[
        "session"
    ].to_list()
    if bad:
        raise BacktestInputError(f"non-positive or NaN prices on sessions: {_rows(list(bad))}")
    return span
