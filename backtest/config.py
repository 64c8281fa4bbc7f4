"""The ``backtest`` section of the service configuration (frozen, unknown keys rejected)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from backtest.costs import CostProfile, EtfCosts, FuturesCosts, StockCosts
from feeds.frozen import Frozen


class SignalRule(Frozen):
    """How P(up) at session t becomes a target position (fraction of equity, -1..1)."""

    mode: Literal["long_flat", "long_short"] = Field(
        "long_flat", description="long_flat: long or flat; long_short: long, flat or short"
    )
    long_above: float = Field(0.5, ge=0, le=1, description="go long when P(up) > this")
    short_below: float = Field(0.5, ge=0, le=1, description="go short when P(up) < this")
    sizing: Literal["fixed", "confidence"] = Field(
        "fixed", description="fixed: full size; confidence: size = min(1, scale * |2p - 1|)"
    )
    confidence_scale: float = Field(2.0, gt=0, description="scale of the confidence sizing")

    @model_validator(mode="after")
    def _ordered(self) -> SignalRule:
        if self.mode == "long_short" and self.short_below > self.long_above:
            raise ValueError("short_below must not exceed long_above")
        return self


class Execution(Frozen):
    """When the signal known at session t's close trades (never on bar t itself)."""

    price: Literal["next_open", "next_close"] = Field(
        "next_open", description="fill at the open or the close of session t + lag"
    )
    lag: int = Field(1, ge=1, le=20, description="sessions between signal and fill")
    hold: Literal["carry", "intraday"] = Field(
        "carry",
        description="carry: hold until the target changes; intraday: enter at the open of "
        "t + lag and exit at that session's close (next_open only)",
    )

    @model_validator(mode="after")
    def _intraday_needs_open(self) -> Execution:
        if self.hold == "intraday" and self.price != "next_open":
            raise ValueError("hold='intraday' needs price='next_open'")
        return self


class SweepGrid(Frozen):
    """Variants of one vectorised sweep: thresholds x cost levels x execution lags."""

    thresholds: tuple[float, ...] = Field(
        (0.45, 0.5, 0.55), description="long_above values (short_below mirrors them, 1 - x)"
    )
    cost_multipliers: tuple[float, ...] = Field(
        (0.0, 1.0, 2.0), description="scale of every cost (commission, minimum, slippage)"
    )
    lags: tuple[int, ...] = Field((1, 2), description="execution lags in sessions")


class BacktestConfig(Frozen):
    """Backtest defaults: instrument costs, signal rule, execution, capital, outputs."""

    instrument: Literal["if", "etf", "stock"] = Field(
        "if", description="cost profile: IF futures, 510300 ETF or an A-share stock"
    )
    futures: FuturesCosts = FuturesCosts()
    etf: EtfCosts = EtfCosts()
    stock: StockCosts = StockCosts()
    rule: SignalRule = SignalRule()
    execution: Execution = Execution()
    sweep: SweepGrid = SweepGrid()
    init_cash: float = Field(10_000_000.0, gt=0, description="starting capital, CNY")
    periods_per_year: int = Field(244, gt=0, description="A-share sessions per year (about)")
    rolling_window: int = Field(60, ge=5, description="sessions in the rolling accuracy")
    out_dir: Path = Field(Path("reports/backtest"), description="report folder (git-ignored)")

    def profile(self, instrument: str | None = None) -> CostProfile:
        """The cost profile named ``instrument`` (default: the configured one)."""
        name = instrument or self.instrument
        profiles: dict[str, CostProfile] = {
            "if": self.futures,
            "etf": self.etf,
            "stock": self.stock,
        }
        if name not in profiles:
            raise ValueError(f"unknown instrument profile {name!r}; known: {sorted(profiles)}")
        return profiles[name]
