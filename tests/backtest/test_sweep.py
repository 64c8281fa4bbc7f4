"""One-call sweeps agree with single runs; the configured variant is marked, not the best."""

from __future__ import annotations

import polars as pl
import pytest

from backtest.config import BacktestConfig, Execution, SignalRule, SweepGrid
from backtest.costs import EtfCosts, Slippage
from backtest.run import run_backtest
from backtest.sweep import Variants, run_sweep
from tests.backtest.conftest import tiny_config

GRID = SweepGrid(thresholds=(0.45, 0.55), cost_multipliers=(0.0, 1.0), lags=(2,))


@pytest.fixture(scope="module")
def config() -> BacktestConfig:
    cfg = tiny_config(init_cash=1e6, execution=Execution(lag=2), rule=SignalRule(long_above=0.55))
    return cfg.model_copy(update={"etf": EtfCosts(slippage=Slippage(ticks=1.0))})


def test_grid_is_the_full_product() -> None:
    v = Variants.grid(SweepGrid(thresholds=(0.4, 0.5, 0.6), cost_multipliers=(1, 2), lags=(1, 2)))
    assert len(v) == 12
    assert sorted(set(zip(v.threshold, v.cost_multiplier, v.lag, strict=True))) == sorted(
        (t, c, lag) for t in (0.4, 0.5, 0.6) for c in (1.0, 2.0) for lag in (1, 2)
    )


def test_sweep_columns_equal_single_runs(
    config: BacktestConfig,
    synthetic_bars: pl.DataFrame,
    random_preds: pl.DataFrame,
) -> None:
    s = run_sweep(random_preds, synthetic_bars, config, grid=GRID)
    assert s.n_variants == 4 and "4 variants" in s.warning
    chosen = s.table.filter(pl.col("chosen"))
    assert chosen.height == 1 and chosen["threshold"][0] == 0.55
    single = run_backtest(random_preds, synthetic_bars, config)
    assert chosen["total_return"][0] == pytest.approx(single.trading["total_return"], rel=1e-12)
    assert chosen["sharpe"][0] == pytest.approx(single.trading["sharpe"], rel=1e-9)
    assert chosen["orders"][0] == single.trading["orders"]
    # cost multiplier 0 equals a run with a cost-free profile
    free = config.model_copy(
        update={
            "etf": EtfCosts(commission=0.0, min_commission=0.0, slippage=Slippage()),
            "rule": SignalRule(long_above=0.45),
        }
    )
    free_run = run_backtest(random_preds, synthetic_bars, free)
    row = s.table.filter((pl.col("threshold") == 0.45) & (pl.col("cost_multiplier") == 0.0))
    assert row["total_return"][0] == pytest.approx(free_run.trading["total_return"], rel=1e-12)
    # costs only hurt: every costed variant trails its cost-free twin
    for t in GRID.thresholds:
        pair = s.table.filter(pl.col("threshold") == t).sort("cost_multiplier")
        assert pair["total_return"][1] < pair["total_return"][0]


def test_long_short_sweep_mirrors_the_threshold(
    synthetic_bars: pl.DataFrame, random_preds: pl.DataFrame
) -> None:
    cfg = tiny_config(instrument="if", init_cash=1e7, rule=SignalRule(mode="long_short"))
    grid = SweepGrid(thresholds=(0.45, 0.6), cost_multipliers=(1.0,), lags=(1,))
    s = run_sweep(random_preds, synthetic_bars, cfg, grid=grid)
    single = run_backtest(
        random_preds,
        synthetic_bars,
        cfg.model_copy(
            update={"rule": SignalRule(mode="long_short", long_above=0.6, short_below=0.4)}
        ),
    )
    row = s.table.filter(pl.col("threshold") == 0.6)
    assert row["orders"][0] == single.trading["orders"]
    assert row["total_return"][0] == pytest.approx(single.trading["total_return"], rel=1e-12)
