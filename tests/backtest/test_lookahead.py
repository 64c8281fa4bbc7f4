"""No trade uses the bar on which its signal became known."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtest.config import Execution
from backtest.run import run_backtest
from tests.backtest.conftest import tiny_config

EXECUTIONS = [
    Execution(),
    Execution(price="next_close"),
    Execution(lag=2),
    Execution(hold="intraday"),
]


@pytest.mark.parametrize("execution", EXECUTIONS)
@pytest.mark.parametrize("instrument", ["if", "etf"])
def test_changing_a_signal_never_changes_its_own_bar(
    execution: Execution,
    instrument: str,
    synthetic_bars: pl.DataFrame,
    random_preds: pl.DataFrame,
) -> None:
    """Flip P(up) at session j: equity up to and including j's close must not move.

    The signal at j is known at j's close; a fill on bar j (at its open or close) would change
    equity at j.  The flip must change equity later, or the test could not fail.
    """
    cfg = tiny_config(instrument=instrument, init_cash=1e7, execution=execution)
    base = run_backtest(random_preds, synthetic_bars, cfg)
    p = random_preds["p_up"].to_numpy()
    for j in (20, 77, 150):
        flipped = random_preds.with_columns(
            pl.Series("p_up", np.where(np.arange(p.size) == j, 1.0 - np.round(p), p))
        )
        r = run_backtest(flipped, synthetic_bars, cfg)
        cut = base.sessions.index(random_preds["session"][j])
        np.testing.assert_array_equal(r.equity[: cut + 1], base.equity[: cut + 1])
        assert not np.array_equal(r.equity, base.equity)


def test_every_fill_is_after_its_signal_session(
    synthetic_bars: pl.DataFrame, random_preds: pl.DataFrame
) -> None:
    r = run_backtest(random_preds, synthetic_bars, tiny_config(init_cash=1e7))
    signal_sessions = set(random_preds["session"].to_list())
    first_signal = random_preds["session"][0]
    # no order on the first signal session, and every order session is a later bar
    assert first_signal in signal_sessions
    assert r.orders["session"].min() > first_signal


@pytest.mark.parametrize("execution", [Execution(), Execution(price="next_close", lag=2)])
def test_truncated_data_gives_the_same_equity(
    execution: Execution, synthetic_bars: pl.DataFrame, random_preds: pl.DataFrame
) -> None:
    """Truncation invariance: a run that stops at session s agrees with the full run up to s."""
    cfg = tiny_config(instrument="etf", init_cash=1e6, execution=execution)
    full = run_backtest(random_preds, synthetic_bars, cfg)
    for cut in (60, 131):
        last = random_preds["session"][cut - 1]
        short = run_backtest(
            random_preds.head(cut), synthetic_bars.filter(pl.col("session") <= last), cfg
        )
        n = len(short.sessions)
        assert short.sessions == full.sessions[:n]
        np.testing.assert_array_equal(short.equity, full.equity[:n])
