"""The session grid in minutes and the one bar-rule table with its two evaluators."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from feeds.bar_rules import RULES, first_failure, polars_rules
from feeds.calendar import FUTURES_SESSION_CHANGE, intraday_grid
from feeds.schema import InstrumentKind
from feeds.session import (
    CASH_GRID,
    FUTURES_GRID_BEFORE_CHANGE,
    grid_exprs,
    local_minute,
    session_grid,
)


def test_grids_are_the_calendars_segments_in_minutes() -> None:
    assert CASH_GRID.trading_minutes == 240 and CASH_GRID.slots(5) == 48
    assert CASH_GRID.describe(1) == "09:31-11:30 or 13:01-15:00"
    assert FUTURES_GRID_BEFORE_CHANGE.describe(5) == "09:20-11:30 or 13:05-15:15"
    before = FUTURES_SESSION_CHANGE - timedelta(days=1)
    fut = InstrumentKind.INDEX_FUTURE
    assert session_grid(fut, before) == FUTURES_GRID_BEFORE_CHANGE
    assert session_grid(fut, FUTURES_SESSION_CHANGE) == CASH_GRID
    assert session_grid(InstrumentKind.INDEX, before) == CASH_GRID


@pytest.mark.parametrize("minutes", [1, 5])
def test_bar_ends_and_slots_match_the_calendar_grid(minutes: int) -> None:
    d = date(2024, 6, 28)
    stamps = intraday_grid(InstrumentKind.INDEX, d, minutes)
    epoch = np.array([int(t.timestamp()) for t in stamps])
    mod = local_minute(epoch)
    assert (mod == CASH_GRID.bar_ends(minutes)).all()
    assert CASH_GRID.on_grid(mod, minutes).all()
    assert (CASH_GRID.slot(mod, minutes) == np.arange(CASH_GRID.slots(minutes))).all()
    assert not CASH_GRID.on_grid(np.array([570, 700, 780, 901]), 1).any()  # open, lunch, close+1


def test_polars_grid_follows_the_futures_session_change() -> None:
    before = FUTURES_SESSION_CHANGE - timedelta(days=1)
    df = pl.DataFrame(
        {
            "kind": ["index_future", "index_future", "index"],
            "session": [before, FUTURES_SESSION_CHANGE, before],
        }
    )
    got = df.select(
        *(
            e.alias(n)
            for e, n in zip(grid_exprs(pl.col("kind"), pl.col("session")), "abcd", strict=True)
        )
    )
    assert got.rows() == [(555, 690, 780, 915), (570, 690, 780, 900), (570, 690, 780, 900)]
    # told the kinds the rows hold, the grid leaves the other kinds' branches out: same bounds
    for kinds in (["index_future", "index"], ["index_future"], ["index"]):
        part = df.filter(pl.col("kind").is_in(kinds))
        bounds = grid_exprs(pl.col("kind"), pl.col("session"), kinds)
        told = part.select(*(e.alias(n) for e, n in zip(bounds, "abcd", strict=True)))
        assert told.rows() == got.filter(df["kind"].is_in(kinds)).rows(), kinds


def _bars() -> pl.DataFrame:
    """Five 1-minute bars of 2024-06-28: fine, high too low, lunch break, holiday, low too high."""
    shanghai = [
        datetime(2024, 6, 28, 1, 31, tzinfo=UTC),
        datetime(2024, 6, 28, 1, 32, tzinfo=UTC),
        datetime(2024, 6, 28, 4, 0, tzinfo=UTC),  # 12:00 exchange time
        datetime(2024, 10, 1, 1, 31, tzinfo=UTC),  # National Day
        datetime(2024, 6, 28, 1, 33, tzinfo=UTC),
    ]
    return pl.DataFrame(
        {
            "kind": ["index"] * 5,
            "session": [t.date() for t in shanghai],
            "ts": shanghai,
            "open": [10.0, 10.0, 10.0, 10.0, 10.0],
            "high": [11.0, 9.0, 11.0, 11.0, 11.0],
            "low": [9.0, 9.0, 9.0, 9.0, 10.5],
            "close": [10.0, 10.0, 10.0, 10.0, 10.0],
            "volume": [1.0] * 5,
        }
    )


def test_both_evaluators_blame_the_same_rule() -> None:
    bars = _bars()
    rules = polars_rules(1, bars.columns)
    first = pl.coalesce(*[pl.when(bad).then(pl.lit(f)) for bad, f, _ in rules])
    reason = pl.coalesce(*[pl.when(bad).then(msg) for bad, _, msg in rules])
    got = bars.select(first.alias("field"), reason.alias("reason")).rows()
    assert got == [
        (None, None),
        ("high", "high 9.0 below max(open, close, low)"),
        ("datetime", "bar end 12:00:00 outside the trading session"),
        ("session", "2024-10-01 is not an XSHG trading day"),
        ("low", "low 10.5 above min(open, close)"),
    ]
    cols = {c: bars[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    cols["session"] = bars["session"].to_numpy().astype("datetime64[D]")
    cols["ts"] = bars["ts"].dt.epoch("s").to_numpy()
    # numpy: rule-major first failure; one bar at a time gives each bar's own rule
    for i, (field, _) in enumerate(got):
        one = {k: v[i : i + 1] for k, v in cols.items()}
        f = first_failure(one, ("value", "ohlc", "calendar", "grid"), grid=CASH_GRID, minutes=1)
        assert (f.rule.field if f else None) == field, i
    f = first_failure(cols, ("ohlc",))
    assert f is not None and (f.index, f.text) == (1, "high below max(open, close, low)")


def test_rule_names_are_unique_and_ordered_as_ingest_reports_them() -> None:
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    assert names.index("ohlc_high") < names.index("trading_day") < names.index("session_grid")
