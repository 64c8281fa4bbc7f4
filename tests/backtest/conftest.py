"""Fixtures of the backtest tests: tiny hand-built bars, a synthetic market, one warm vectorbt."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtest.config import BacktestConfig, Execution, SignalRule
from backtest.costs import EtfCosts, FuturesCosts, Slippage, StockCosts
from backtest.inputs import persistence_predictions
from feeds.read import daily_bars
from feeds.store import open_store, transaction
from feeds.synthetic import SYNTHETIC_SYMBOL, synthetic_market
from feeds.writer import write_bars

REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"

NO_SLIP = Slippage()


def bars_frame(sessions: list[date], open_: list[float], close: list[float]) -> pl.DataFrame:
    """Daily bars with only what the backtest reads (session, open, close, source)."""
    return pl.DataFrame(
        {
            "session": sessions,
            "source": "test",
            "open": [float(x) for x in open_],
            "high": [float(max(o, c)) for o, c in zip(open_, close, strict=True)],
            "low": [float(min(o, c)) for o, c in zip(open_, close, strict=True)],
            "close": [float(x) for x in close],
        }
    )


def preds_frame(sessions: list[date], p_up: list[float], model: str = "m") -> pl.DataFrame:
    return pl.DataFrame({"session": sessions, "model": model, "p_up": [float(p) for p in p_up]})


def tiny_config(
    *,
    init_cash: float = 10_000.0,
    execution: Execution | None = None,
    rule: SignalRule | None = None,
    instrument: str = "etf",
) -> BacktestConfig:
    """Hand-computable costs: no slippage; ETF 3 bp with a 5 CNY minimum; stock 3 bp."""
    return BacktestConfig(
        instrument=instrument,  # type: ignore[arg-type]
        futures=FuturesCosts(slippage=NO_SLIP, whole_contracts=False),
        etf=EtfCosts(commission=0.0003, min_commission=5.0, slippage=NO_SLIP),
        stock=StockCosts(commission=0.0003, min_commission=5.0, slippage=NO_SLIP),
        init_cash=init_cash,
        execution=execution or Execution(),
        rule=rule or SignalRule(),
    )


@pytest.fixture(scope="session")
def week() -> list[date]:
    """Five XSHG sessions (2024-01-01 is a holiday)."""
    return [
        date(2024, 1, 2),
        date(2024, 1, 3),
        date(2024, 1, 4),
        date(2024, 1, 5),
        date(2024, 1, 8),
    ]


@pytest.fixture(scope="session")
def week_bars(week: list[date]) -> pl.DataFrame:
    return bars_frame(week, [10, 11, 12.5, 12, 11], [10, 12, 13, 11, 11.5])


@pytest.fixture(scope="session")
def synthetic_bars() -> pl.DataFrame:
    """About 250 synthetic sessions, read back through an in-memory store."""
    market = synthetic_market(date(2022, 1, 1), date(2022, 12, 31), seed=11, minute_sessions=0)
    con = open_store(":memory:")
    with transaction(con):
        write_bars(con, market.daily, file_sha256=None)
    bars = daily_bars(con, SYNTHETIC_SYMBOL)
    con.close()
    return bars


@pytest.fixture(scope="session")
def random_preds(synthetic_bars: pl.DataFrame) -> pl.DataFrame:
    """Seeded random P(up) on the synthetic sessions (labels from the bars)."""
    base = persistence_predictions(synthetic_bars, model="random")
    rng = np.random.default_rng(5)
    return base.with_columns(pl.Series("p_up", rng.uniform(size=base.height)))


@pytest.fixture(scope="session", autouse=True)
def warm_vectorbt(week: list[date], week_bars: pl.DataFrame) -> None:
    """JIT-compile (or load from numba's cache) every vectorbt kernel once per test session."""
    from backtest.run import run_backtest

    run_backtest(preds_frame(week[:4], [0.9, 0.8, 0.1, 0.2]), week_bars, tiny_config())
