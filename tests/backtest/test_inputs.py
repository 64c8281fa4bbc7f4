"""Bad input: clear errors naming the offending rows."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from backtest.config import SignalRule
from backtest.inputs import BacktestInputError, select_model
from backtest.run import run_backtest
from tests.backtest.conftest import bars_frame, preds_frame, tiny_config


def _run(preds: pl.DataFrame, bars: pl.DataFrame, **kw: object) -> None:
    run_backtest(preds, bars, tiny_config(**kw))  # type: ignore[arg-type]


def test_duplicate_sessions_are_named(week: list[date], week_bars: pl.DataFrame) -> None:
    preds = preds_frame([week[0], week[1], week[1]], [0.6, 0.7, 0.4])
    with pytest.raises(BacktestInputError, match="duplicate prediction sessions: 2024-01-03"):
        _run(preds, week_bars)


def test_gaps_are_named(week: list[date], week_bars: pl.DataFrame) -> None:
    preds = preds_frame([week[0], week[2]], [0.6, 0.7])
    with pytest.raises(BacktestInputError, match=r"gaps.*2024-01-03"):
        _run(preds, week_bars)


def test_non_trading_days_are_named(week_bars: pl.DataFrame) -> None:
    preds = preds_frame([date(2024, 1, 1), date(2024, 1, 2)], [0.6, 0.7])  # New Year holiday
    with pytest.raises(BacktestInputError, match="non-trading days: 2024-01-01"):
        _run(preds, week_bars)


def test_signal_day_without_price_is_named(week: list[date], week_bars: pl.DataFrame) -> None:
    bars = week_bars.filter(pl.col("session") != week[1])
    with pytest.raises(BacktestInputError, match="no price bar for signal sessions: 2024-01-03"):
        _run(preds_frame(week[:3], [0.6, 0.7, 0.4]), bars)


def test_missing_bar_inside_the_span_is_named(week: list[date]) -> None:
    bars = bars_frame([week[0], week[1], week[3]], [10, 11, 12], [10, 11, 12])
    with pytest.raises(BacktestInputError, match="bars missing for sessions: 2024-01-04"):
        _run(preds_frame(week[:2], [0.6, 0.7]), bars)


@pytest.mark.parametrize("bad", [1.2, -0.1, float("nan")])
def test_probabilities_outside_0_1_or_nan_are_named(
    bad: float, week: list[date], week_bars: pl.DataFrame
) -> None:
    preds = preds_frame(week[:3], [0.6, bad, 0.4])
    with pytest.raises(BacktestInputError, match=r"\[0, 1\] without NaN: row 1 \(2024-01-03"):
        _run(preds, week_bars)


def test_null_probability_is_named(week: list[date], week_bars: pl.DataFrame) -> None:
    preds = preds_frame(week[:2], [0.6, 0.5]).with_columns(
        pl.when(pl.col("p_up") == 0.5).then(None).otherwise(pl.col("p_up")).alias("p_up")
    )
    with pytest.raises(BacktestInputError, match="row 1"):
        _run(preds, week_bars)


def test_unknown_instrument_profile(week: list[date], week_bars: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown instrument profile 'bond'"):
        run_backtest(preds_frame(week[:2], [0.6, 0.7]), week_bars, tiny_config(), instrument="bond")


def test_short_rule_on_an_etf_is_refused(week: list[date], week_bars: pl.DataFrame) -> None:
    with pytest.raises(BacktestInputError, match="cannot be sold short"):
        _run(preds_frame(week[:2], [0.6, 0.7]), week_bars, rule=SignalRule(mode="long_short"))


def test_model_selection_names_the_choices(week: list[date]) -> None:
    preds = pl.concat(
        [preds_frame(week[:2], [0.6, 0.7], "a"), preds_frame(week[:2], [0.1, 0.2], "b")]
    )
    with pytest.raises(BacktestInputError, match=r"models \['a', 'b'\]"):
        select_model(preds, None)
    with pytest.raises(BacktestInputError, match="'c' not in predictions"):
        select_model(preds, "c")
    assert select_model(preds, "b")["p_up"].to_list() == [0.1, 0.2]
