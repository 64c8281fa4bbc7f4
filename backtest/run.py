"""One backtest from a predictions frame: validate, schedule, simulate, score.

The backtest runs on the INDEX series as a proxy for the traded instrument (the index itself
cannot be traded) and charges that instrument's costs; every report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from vectorbt.portfolio.enums import TradeStatus

from backtest.accuracy import accuracy_report
from backtest.config import BacktestConfig
from backtest.costs import CostProfile, FuturesCosts
from backtest.engine import Simulation, session_equity, simulate
from backtest.inputs import BacktestInputError, bars_for_backtest, validate_predictions
from backtest.signals import Layout, layout, schedule, target_positions
from backtest.trading import performance, scalar
from models.labels import next_direction

PROXY_NOTE = (
    "Proxy backtest: the CSI 300 index series stands in for the traded instrument, {name}. "
    "Fills use index prices with the instrument's costs. Futures basis, roll costs, ETF "
    "tracking error and dividends are not modelled."
)
INSTRUMENT_NAMES = {
    "if": "CSI 300 index futures (CFFEX IF)",
    "etf": "CSI 300 ETF (SSE 510300, listed 2012-05-28; earlier sessions are hypothetical)",
    "stock": "an A-share stock",
}


@dataclass(frozen=True)
class BacktestResult:
    """Everything a report needs; figures are plain floats and arrays."""

    model: str
    instrument: str
    config: BacktestConfig
    profile: CostProfile
    sessions: list[date]  # equity sessions: first signal session .. last fill session
    equity: np.ndarray  # CNY at each session close
    benchmark: np.ndarray  # index buy-and-hold from the same capital, no costs
    exposure: np.ndarray  # position value / equity at each session close
    accuracy_sessions: list[date]
    accuracy: dict[str, Any]
    p_up: np.ndarray  # on accuracy_sessions
    labels: np.ndarray  # on accuracy_sessions
    trading: dict[str, float]
    buy_and_hold: dict[str, float]
    orders: pl.DataFrame
    passes: int
    proxy_note: str


def _label_frame(preds: pl.DataFrame, bars: pl.DataFrame, window: int) -> pl.DataFrame:
    """Per prediction session: label, persistence call and trailing-window regime (known at t)."""
    d = bars.sort("session").select("session", "close")
    feats = d.with_columns(
        (pl.col("close") > pl.col("close").shift(1)).cast(pl.Float64).alias("persist_up"),
        (pl.col("close") > pl.col("close").shift(window)).cast(pl.Float64).alias("regime_up"),
    ).join(
        next_direction(d).select("session", pl.col("label").alias("bar_label")), "session", "left"
    )
    out = preds.join(feats, on="session", how="left")
    if "label" not in out.columns:
        out = out.with_columns(pl.col("bar_label").alias("label"))
    return out.filter(pl.col("label").is_not_null() & pl.col("persist_up").is_not_null())


def _trading_extras(
    sim: Simulation, lay: Layout, equity: np.ndarray, profile: CostProfile, ppy: int
) -> tuple[dict[str, float], pl.DataFrame, np.ndarray]:
    pf = sim.portfolio
    rec = pf.order_records
    raw = lay.price[rec["idx"]]
    notional = rec["size"] * rec["price"]
    fees = float(rec["fees"].sum())
    slip = float(np.sum(rec["size"] * np.abs(rec["price"] - raw)))
    years = max(len(equity) - 1, 1) / ppy
    pos = pf.positions.values  # round trips: entry to flat (or to the end, still open)
    closed = pos[pos["status"] == TradeStatus.Closed]
    wins = int(np.sum(closed["pnl"] > 0))
    assets = np.asarray(pf.assets(), dtype=float).ravel()[lay.session_end]
    exposure = assets * lay.mark[lay.session_end] / equity
    extras = {
        "orders": float(len(rec)),
        "trades": float(len(pos)),
        "closed_trades": float(len(closed)),
        "hit_rate": wins / len(closed) if len(closed) else float("nan"),
        "fees_paid": fees,
        "slippage_paid": slip,
        "costs_paid": fees + slip,
        "turnover_per_year": float(notional.sum() / equity.mean() / years),
        "mean_abs_exposure": float(np.mean(np.abs(exposure))),
    }
    if isinstance(profile, FuturesCosts):
        extras["max_margin_use"] = float(np.max(np.abs(exposure)) * profile.margin)
        extras["max_contracts"] = float(np.max(np.abs(assets)) / profile.multiplier)
    orders = pl.DataFrame(
        {
            "session": lay.session[rec["idx"]],
            "side": np.where(rec["side"] == 0, "buy", "sell"),
            "units": rec["size"],
            "fill_price": rec["price"],
            "bar_price": raw,
            "fees": rec["fees"],
        }
    )
    return extras, orders, exposure


def run_backtest(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    config: BacktestConfig,
    *,
    instrument: str | None = None,
) -> BacktestResult:
    """Backtest one model's predictions (``session``, ``p_up``, ``label``) on daily ``bars``."""
    instrument = instrument or config.instrument
    profile = config.profile(instrument)
    rule, ex = config.rule, config.execution
    if rule.mode == "long_short" and not profile.short_allowed:
        raise BacktestInputError(f"instrument {instrument!r} cannot be sold short (long_short)")
    preds = validate_predictions(predictions, bars)
    model = str(preds["model"][0]) if "model" in preds.columns else "unnamed"
    span = bars_for_backtest(preds, bars, ex.lag)
    sessions = span["session"].to_numpy()
    lay = layout(sessions, span["open"].to_numpy(), span["close"].to_numpy(), ex)
    signal_index = np.searchsorted(sessions, preds["session"].to_numpy())
    targets = target_positions(preds["p_up"].to_numpy(), rule)
    sched = schedule(
        targets,
        signal_index,
        lay,
        np.array([ex.lag]),
        intraday=ex.hold == "intraday",
        t_plus_one=profile.t_plus_one,
    )
    sim = simulate(lay, sched, profile, init_cash=config.init_cash)
    equity = session_equity(sim, lay)[:, 0]
    close = span["close"].to_numpy()
    benchmark = config.init_cash * close / close[0]
    extras, orders, exposure = _trading_extras(sim, lay, equity, profile, config.periods_per_year)
    lab = _label_frame(preds, bars, config.rolling_window)
    acc_sessions = lab["session"].to_list()
    labels = lab["label"].to_numpy().astype(float)
    p = lab["p_up"].to_numpy()
    accuracy = accuracy_report(
        acc_sessions,
        labels,
        p,
        lab["persist_up"].to_numpy(),
        lab["regime_up"].fill_null(np.nan).to_numpy(),
        window=config.rolling_window,
    )
    accuracy["label_mismatches"] = int(
        lab.filter(
            pl.col("bar_label").is_not_null() & (pl.col("bar_label") != pl.col("label"))
        ).height
    )
    ppy = config.periods_per_year
    return BacktestResult(
        model=model,
        instrument=instrument,
        config=config,
        profile=profile,
        sessions=span["session"].to_list(),
        equity=equity,
        benchmark=benchmark,
        exposure=exposure,
        accuracy_sessions=acc_sessions,
        accuracy=accuracy,
        p_up=p,
        labels=labels,
        trading=scalar(performance(equity, ppy)) | extras,
        buy_and_hold=scalar(performance(benchmark, ppy)),
        orders=orders,
        passes=sim.passes,
        proxy_note=PROXY_NOTE.format(name=INSTRUMENT_NAMES[instrument]),
    )
