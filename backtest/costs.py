"""Instrument cost profiles (typed, frozen, each documented with its source) and per-bar costs.

The backtest trades the CSI 300 *index* series as a proxy for an instrument (IF futures, the
510300 ETF, or an A-share stock) and charges that instrument's costs.  Rates are fractions of
traded notional (0.0001 = 1 bp); money is CNY.

Sources (checked 2025; verify against the current schedules before trading real money):

- CFFEX, CSI 300 index futures (IF) contract specification: multiplier 300 CNY per index point,
  tick 0.2 point.  Exchange fee 0.23/10,000 of turnover to open or to close a position held
  overnight.  Closing a position opened the same day ("close-today", 平今仓) follows the dated
  schedule ``IF_CLOSE_TODAY`` below, from the CFFEX notices 关于调整股指期货手续费标准的通知
  (cffex.com.cn, 交易所通知), by effective date: 1.15/10,000 from 2015-08-26 (notice of
  2015-08-25); 23/10,000 from 2015-09-07 (announced 2015-09-02 with the higher margins and
  position limits of the crash); 9.2/10,000 from 2017-02-17 (notice of 2017-02-16,
  cffex.com.cn/jystz/20170216/20198.html); 6.9/10,000 from 2017-09-18 (notice of 2017-09-15);
  4.6/10,000 from 2018-12-03; 3.45/10,000 from 2019-04-22; 2.3/10,000 from 2023-03-20.  The
  2015 and 2017 notices were read in the exchange's wording as reposted by member brokers; the
  later dates are as announced by CFFEX and widely reported (re-check the exchange's notice
  list before trading real money).  Before 2015-08-26 the ordinary fee is charged (assumption:
  earlier close-today rules are not modelled; IF listed 2010-04-16, and index-proxy backtests
  from 2005 use the same rate).  Margin: exchange minimum plus broker add-on; 12% is a common
  all-in broker rate.
- SSE trading rules and fee list for equity ETFs (510300, Huatai-PineBridge CSI 300 ETF):
  broker commission negotiable (legal cap 0.3%), commonly 0.5-3 bp with a 5 CNY minimum per
  order; no stamp duty and no CSDC transfer fee on ETFs; T+1 (shares bought today can be sold
  from the next session); price tick 0.001 CNY; 510300 trades near index / 1000.
- A-share stocks: commission with a 5 CNY minimum (broker practice, legal cap 0.3%); CSDC
  transfer fee 0.002% of turnover per side from 2015-08-01, 0.001% from 2022-04-29; stamp duty
  (MoF/STA): 0.2% both sides from 2001-11-16, 0.1% from 2005-01-24, 0.3% from 2007-05-30, 0.1%
  both sides from 2008-04-24, sell side only from 2008-09-19, halved to 0.05% (sell only) from
  2023-08-28 (MoF/STA announcement 2023 No. 39).  The schedule covers every session of the XSHG
  calendar (2005 on), so every stored session has a rate.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from feeds.frozen import Frozen

Rate = Annotated[float, Field(ge=0.0, lt=0.1)]

# (effective date, rate on buys, rate on sells); each entry holds until the next one.
StampSchedule = tuple[tuple[date, float, float], ...]
TransferSchedule = tuple[tuple[date, float], ...]

A_SHARE_STAMP_DUTY: StampSchedule = (
    (date(2001, 11, 16), 0.002, 0.002),
    (date(2005, 1, 24), 0.001, 0.001),
    (date(2007, 5, 30), 0.003, 0.003),
    (date(2008, 4, 24), 0.001, 0.001),
    (date(2008, 9, 19), 0.0, 0.001),
    (date(2023, 8, 28), 0.0, 0.0005),
)
# Before 2015-08-01 Shanghai charged per share; 0.002% of turnover is used as the nearest rate.
A_SHARE_TRANSFER_FEE: TransferSchedule = (
    (date(2005, 1, 1), 0.00002),
    (date(2022, 4, 29), 0.00001),
)

# CFFEX close-today (平今仓) fee of the CSI 300 index futures, a fraction of turnover; sources in
# the module docstring.  The first entry is the ordinary fee (see the docstring's assumption).
IF_CLOSE_TODAY: TransferSchedule = (
    (date(2005, 1, 1), 0.23e-4),
    (date(2015, 8, 26), 1.15e-4),
    (date(2015, 9, 7), 23.0e-4),
    (date(2017, 2, 17), 9.2e-4),
    (date(2017, 9, 18), 6.9e-4),
    (date(2018, 12, 3), 4.6e-4),
    (date(2019, 4, 22), 3.45e-4),
    (date(2023, 3, 20), 2.3e-4),
)


class Slippage(Frozen):
    """Adverse price move per order: buys fill above, sells below the bar price."""

    bps: float = Field(0.0, ge=0.0, description="slippage in basis points of the price")
    ticks: float = Field(0.0, ge=0.0, description="slippage in instrument ticks")


class FuturesCosts(Frozen):
    """CSI 300 index futures (CFFEX IF); see the module docstring for sources."""

    kind: Literal["index_future"] = "index_future"
    multiplier: float = Field(300.0, gt=0, description="CNY per index point per contract")
    tick: float = Field(0.2, gt=0, description="price tick in index points")
    commission: Rate = Field(0.23e-4, description="rate per side to open or close-overnight")
    close_today: TransferSchedule = Field(
        IF_CLOSE_TODAY, description="dated (from, rate) to close a position opened that day"
    )
    margin: float = Field(0.12, gt=0, le=1, description="margin as a fraction of notional")
    whole_contracts: bool = Field(True, description="trade whole contracts (multiplier units)")
    slippage: Slippage = Slippage(ticks=1.0)
    short_allowed: bool = True
    t_plus_one: bool = False
    price_scale: float = Field(1.0, description="instrument price per index point")


class EtfCosts(Frozen):
    """CSI 300 ETF (SSE 510300); see the module docstring for sources."""

    kind: Literal["etf"] = "etf"
    commission: Rate = Field(2.5e-4, description="broker commission rate per side")
    min_commission: float = Field(5.0, ge=0, description="minimum commission per order, CNY")
    tick: float = Field(0.001, gt=0, description="price tick in CNY")
    price_scale: float = Field(0.001, gt=0, description="ETF price per index point (about)")
    slippage: Slippage = Slippage(ticks=1.0)
    short_allowed: bool = False
    t_plus_one: bool = Field(True, description="shares bought today can only be sold tomorrow")


class StockCosts(Frozen):
    """An A-share stock; see the module docstring for sources."""

    kind: Literal["stock"] = "stock"
    commission: Rate = Field(2.5e-4, description="broker commission rate per side")
    min_commission: float = Field(5.0, ge=0, description="minimum commission per order, CNY")
    transfer_fee: TransferSchedule = Field(A_SHARE_TRANSFER_FEE, description="CSDC, both sides")
    stamp_duty: StampSchedule = Field(A_SHARE_STAMP_DUTY, description="(from, buy, sell) rates")
    slippage: Slippage = Slippage(bps=5.0)
    short_allowed: bool = False
    t_plus_one: bool = True

    @model_validator(mode="after")
    def _no_ticks(self) -> StockCosts:
        if self.slippage.ticks:
            raise ValueError("stock slippage must be in bps: the index proxy has no stock price")
        return self


CostProfile = FuturesCosts | EtfCosts | StockCosts
INSTRUMENTS = ("if", "etf", "stock")


def scheduled_rate(schedule: tuple[tuple[date, float], ...], days: np.ndarray) -> np.ndarray:
    """Rate in force on each of ``days`` (datetime64[D]) under a dated schedule."""
    starts = np.array([s[0] for s in schedule], dtype="datetime64[D]")
    rates = np.array([s[1] for s in schedule])
    idx = np.searchsorted(starts, days, side="right") - 1
    if (idx < 0).any():
        first = days[idx < 0][0]
        raise ValueError(f"no rate in force on {first}: schedule starts {schedule[0][0]}")
    return rates[idx]


def stamp_duty(schedule: StampSchedule, days: np.ndarray, sell: np.ndarray) -> np.ndarray:
    """Stamp duty rate per order: the schedule's sell or buy rate on the order's day."""
    buy = scheduled_rate(tuple((d, b) for d, b, _ in schedule), days)
    sel = scheduled_rate(tuple((d, s) for d, _, s in schedule), days)
    return np.where(sell, sel, buy)


def proportional_rate(
    profile: CostProfile, days: np.ndarray, sell: np.ndarray, closes_today: np.ndarray
) -> np.ndarray:
    """All proportional costs per order (commission, transfer fee, stamp duty, close-today).

    ``days``, ``sell`` and ``closes_today`` broadcast together (rows x variants).
    """
    days, sell, closes_today = np.broadcast_arrays(days, sell, closes_today)
    if isinstance(profile, FuturesCosts):
        today = scheduled_rate(profile.close_today, days.astype("datetime64[D]"))
        return np.where(closes_today, today, profile.commission)
    if isinstance(profile, EtfCosts):
        return np.full(days.shape, profile.commission)
    transfer = scheduled_rate(profile.transfer_fee, days)
    return profile.commission + transfer + stamp_duty(profile.stamp_duty, days, sell)


def min_commission(profile: CostProfile) -> float:
    """Minimum commission per order in CNY (0 for futures)."""
    return 0.0 if isinstance(profile, FuturesCosts) else profile.min_commission


def slippage_fraction(profile: CostProfile, price: np.ndarray) -> np.ndarray:
    """Slippage per order as a fraction of the index price at which it fills."""
    s = profile.slippage
    frac = np.full(np.shape(price), s.bps * 1e-4)
    if s.ticks and not isinstance(profile, StockCosts):
        frac = frac + s.ticks * profile.tick / (np.asarray(price) * profile.price_scale)
    return frac


def lot_units(profile: CostProfile) -> float:
    """Order size granularity in index units (NaN: fractional units allowed)."""
    if isinstance(profile, FuturesCosts) and profile.whole_contracts:
        return profile.multiplier
    return float("nan")
