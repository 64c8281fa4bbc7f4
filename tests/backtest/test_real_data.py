"""Real CSI 300 daily bars (Wind), read in place: persistence backtest on 20 years."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtest.config import BacktestConfig
from backtest.inputs import persistence_predictions
from backtest.oracle import run_oracle
from backtest.run import run_backtest
from feeds.ingest import ingest_file
from feeds.read import daily_bars
from feeds.store import open_store
from tests.backtest.conftest import REAL_DATA

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(
        not REAL_DATA.exists(), reason=f"real data dir ../shared/data/real absent ({REAL_DATA})"
    ),
]


@pytest.fixture(scope="module")
def wind_bars(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    con = open_store(Path(tmp_path_factory.mktemp("real")) / "real.duckdb")
    ingest_file(con, REAL_DATA / "csi300_daily_wind_rlcsi300.csv")
    bars = daily_bars(con, "000300.SH", source="wind")
    con.close()
    return bars


@pytest.mark.parametrize("instrument", ["if", "etf"])
def test_persistence_on_real_bars(instrument: str, wind_bars: pl.DataFrame) -> None:
    preds = persistence_predictions(wind_bars)
    r = run_backtest(preds, wind_bars, BacktestConfig(), instrument=instrument)
    model = r.accuracy["model"]
    assert model["n"] == wind_bars.height - 2  # no previous close on day 1, no label on the last
    assert model["accuracy"] == r.accuracy["baselines"]["persistence"]["accuracy"]
    close = wind_bars["close"].to_numpy()
    assert r.buy_and_hold["total_return"] == pytest.approx(close[-1] / close[1] - 1, rel=1e-12)
    assert r.trading["orders"] > 1000 and r.trading["costs_paid"] > 0
    assert r.sessions[0] == wind_bars["session"][1]


def test_engine_matches_the_oracle_on_real_bars(wind_bars: pl.DataFrame) -> None:
    from backtest.engine import session_equity, simulate
    from backtest.signals import layout, schedule, target_positions

    cfg = BacktestConfig()
    preds = persistence_predictions(wind_bars)
    sessions = wind_bars["session"].to_numpy()
    lay = layout(
        sessions, wind_bars["open"].to_numpy(), wind_bars["close"].to_numpy(), cfg.execution
    )
    sched = schedule(
        target_positions(preds["p_up"].to_numpy(), cfg.rule),
        np.searchsorted(sessions, preds["session"].to_numpy()),
        lay,
        np.array([1]),
        intraday=False,
        t_plus_one=False,
    )
    sim = simulate(lay, sched, cfg.futures, init_cash=cfg.init_cash)
    oracle = run_oracle(
        lay.price,
        lay.mark,
        sched.target[:, 0],
        lay.session,
        sched.closes_today[:, 0],
        cfg.futures,
        init_cash=cfg.init_cash,
    )
    np.testing.assert_allclose(
        session_equity(sim, lay)[:, 0] / cfg.init_cash,
        oracle.equity / cfg.init_cash,
        rtol=0,
        atol=1e-9,
    )
