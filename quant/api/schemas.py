"""Request and response bodies of the API (pydantic; they are the OpenAPI schemas)."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Price = Annotated[float, Field(gt=0, allow_inf_nan=False, description="CNY index points, > 0")]
Volume = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# A symbol: 1-32 of these characters (the body, the path and the fast path all check this).
SYMBOL_CHARS, SYMBOL_MAX = "[A-Za-z0-9._-]", 32
Symbol = Annotated[str, Field(min_length=1, max_length=SYMBOL_MAX, pattern=f"^{SYMBOL_CHARS}+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DailyBar(_Strict):
    """One daily bar of an XSHG session."""

    date: dt.date = Field(description="the XSHG session (exchange date)")
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Volume = Field(description="shares")
    amount: Volume | None = Field(
        None,
        description="turnover in CNY; required on every bar when the serving model reads "
        "turnover (GET /v1/models: uses_amount), ignored otherwise; never estimated",
    )


class MinuteBar(_Strict):
    """One 1-minute bar, stamped with its END time (UTC offset required)."""

    ts: AwareDatetime = Field(description="bar end, e.g. 2024-06-28T09:31:00+08:00")
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Volume


class ForecastRequest(_Strict):
    """Recent bars of one symbol; the forecast is for the session after the last daily bar.

    Rules JSON Schema cannot state (each a 422 naming the bar): daily bars are consecutive XSHG
    sessions, ascending, every one closed at request time (15:00 Asia/Shanghai); high >= max(open,
    close, low) and low <= min(open, close); 1-minute bars lie on the cash-market grid of sent
    sessions, ascending, and come with ``intraday_symbol`` equal to the model's instrument.
    The served schema (GET /openapi.json) states the current model's warm-up as ``minItems``.
    """

    model_config = ConfigDict(extra="forbid")

    symbol: Symbol = Field(description="the index the model serves, e.g. 000300.SH")
    daily: list[DailyBar] = Field(
        min_length=1,
        description="consecutive XSHG sessions, ascending, all closed; at least the model's "
        "warm-up (GET /v1/models: feature_warmup)",
    )
    intraday: list[MinuteBar] | None = Field(
        None, description="optional 1-minute bars of the last sessions, ascending"
    )
    intraday_symbol: Symbol | None = Field(
        None,
        description="instrument of the intraday bars; required with them and must be the one "
        "the model was trained on (GET /v1/models: intraday_symbol)",
    )


class ForecastResponse(BaseModel):
    """P(close of ``session`` > close of ``decision_session``) from the champion model."""

    request_id: str
    symbol: str
    decision_session: date = Field(description="the last daily session sent")
    session: date | None = Field(
        description="the session the forecast is for (next XSHG session); null when it lies "
        "past the calendar's holiday horizon and is not known yet"
    )
    p_up: float = Field(ge=0, le=1)
    direction: Literal["up", "down"]
    confidence: float = Field(ge=0, le=1, description="|p_up - 0.5| * 2")
    used_intraday: bool
    used_amount: bool = Field(description="the model read the turnover (amount) feature")
    model_version: str
    last_bar_ts: datetime = Field(description="end of the last bar the model saw (UTC)")
    generated_at: datetime
    warnings: list[str] = Field(
        default_factory=list, description="e.g. the next session is past the calendar horizon"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": "5f0c8f3b9a8e4c0e",
                    "symbol": "000300.SH",
                    "decision_session": "2024-06-28",
                    "session": "2024-07-01",
                    "p_up": 0.54,
                    "direction": "up",
                    "confidence": 0.08,
                    "used_intraday": False,
                    "used_amount": True,
                    "model_version": "v0003",
                    "last_bar_ts": "2024-06-28T07:00:00Z",
                    "generated_at": "2024-06-28T07:05:12.345Z",
                }
            ]
        }
    )


class SignalOut(BaseModel):
    """A published signal (immutable; a re-run adds ``version`` + 1)."""

    symbol: str
    session: date = Field(description="the session the signal applies to")
    version: int
    decision_session: date
    p_up: float
    direction: Literal["up", "down"]
    confidence: float
    model_version: str
    last_bar_ts: datetime = Field(description="end of the last bar the model saw (UTC)")
    generated_at: datetime
    snapshot_version: str | None = Field(None, description="the published snapshot read")


class SignalList(BaseModel):
    symbol: str
    start: date | None
    end: date | None
    signals: list[SignalOut]
    snapshot_version: str | None


class ModelVersionOut(BaseModel):
    version_id: str
    parent_id: str | None = None
    config_hash: str | None = None
    train_start: date | None = None
    train_end: date | None = None
    metrics: dict[str, float | int | str | None] = Field(default_factory=dict)
    sha256: str | None = None
    created_at: datetime | None = None
    champion: bool = False


class ModelsOut(BaseModel):
    champion: str | None = Field(description="version id answering forecasts now")
    serving: str | None = Field(description="version loaded in this process")
    feature_warmup: int | None = Field(description="daily bars a forecast needs at least")
    uses_amount: bool | None = Field(
        None, description="the model reads turnover: daily bars must carry amount (CNY)"
    )
    intraday_symbol: str | None = Field(
        None, description="instrument whose intraday bars the model was trained on"
    )
    intraday_minutes: int | None = Field(
        None, description="bar length (minutes) of the model's intraday tokens; send 1-minute bars"
    )
    versions: list[ModelVersionOut]


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool = Field(description="model loaded and snapshot readable")
    model_version: str | None
    snapshot_version: str | None
    checks: dict[str, str]
    stale: bool = Field(
        False, description="a run date after the last completed run is late or held"
    )
    calendar_horizon: date | None = Field(
        None, description="last day the exchange holiday list is known to be complete"
    )
    warnings: list[str] = Field(
        default_factory=list, description="stale store, calendar horizon near or passed"
    )


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer."""

    error: str = Field(description="machine-readable code, e.g. unauthorized, invalid_bars")
    message: str = Field(description="what was wrong, for a human")
    request_id: str | None = None
    details: list[dict[str, object]] | None = None
