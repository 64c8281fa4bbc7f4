"""POST /v1/forecast, the one definition: check a decoded body, queue it, render its answer.

``check`` tests a decoded body against the serving model and the limits; ``features`` and
``enqueue`` queue it for the batcher (daily bars alone get their features per batch, in
``quant.api.serving.batch_inputs``); every refusal is an ``HTTPException`` (404, 422 or 503)
whose message names what was wrong.  ``render`` writes the 200 body.  The FastAPI route
(``quant.api.routes.forecast``) and the fast path (``quant.api.fast``) both call these, so both
answer alike; the fast path answers their refusals with the app's own handler.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime

from fastapi import HTTPException

from feeds.calendar import CalendarHorizonError, next_trading_day
from models import features_fast
from models.features_fast import DailyArrays, MinuteArrays, Sample
from models.metrics import confidence, direction
from quant.api.bars import check_daily, check_minutes, last_bar_ts
from quant.api.batcher import Batcher, QueueFullError
from quant.api.decode import ForecastIn
from quant.api.metrics import Metrics
from quant.api.schemas import ForecastRequest, ForecastResponse
from quant.api.serving import Item, ServedModel, ServiceState
from quant.api.settings import ApiConfig

Body = ForecastIn | ForecastRequest


@dataclass(frozen=True)
class Admitted:
    """A body the model can answer, queued for a forward pass."""

    body: Body
    model: ServedModel
    daily: DailyArrays
    minutes: MinuteArrays | None
    used_intraday: bool
    pending: asyncio.Future[tuple[float, float]]


def check(
    body: Body, model: ServedModel | None, state: ServiceState, settings: ApiConfig
) -> tuple[ServedModel, DailyArrays, MinuteArrays | None]:
    """The model (pinned by the caller), the checked daily and 1-minute bars; or 404/422/503."""
    if model is None:
        raise HTTPException(
            503, f"no model loaded: {state.model_error}", headers={"Retry-After": "5"}
        )
    if body.symbol not in state.served_symbols:
        served = ", ".join(sorted(state.served_symbols))
        raise HTTPException(404, f"unknown symbol {body.symbol!r}; the model serves {served}")
    if len(body.daily) > settings.max_daily_bars:
        raise HTTPException(
            422, f"too many daily bars: {len(body.daily)} > {settings.max_daily_bars}"
        )
    minutes = body.intraday or []
    if len(minutes) > settings.max_intraday_bars:
        raise HTTPException(
            422, f"too many intraday bars: {len(minutes)} > {settings.max_intraday_bars}"
        )
    named_fields = body.model_fields_set
    if ("intraday" in named_fields or "intraday_symbol" in named_fields) and (
        body.intraday_symbol or None
    ) != model.intraday_symbol:
        named = (
            f"intraday_symbol {body.intraday_symbol!r}"
            if body.intraday_symbol
            else "no intraday_symbol"
        )
        raise HTTPException(
            422,
            f"intraday bars (or their symbol) sent with {named}; the model was trained on "
            f"{model.intraday_symbol} bars: send intraday_symbol {model.intraday_symbol!r}",
        )
    try:
        d = check_daily(body.daily, model.spec.warmup, needs_amount=model.spec.use_amount)
        m = check_minutes(minutes, d.sessions) if minutes else None
    except ValueError as exc:  # BarsError names the bar
        raise HTTPException(422, str(exc)) from None
    return model, d, m


def features(d: DailyArrays, m: MinuteArrays | None, model: ServedModel) -> Item:
    """What to queue (``model.fast_features``): daily bars alone, whose features the batch
    builds in one pass (``model.batch_features``), else the numpy features; 422 for bars they
    cannot use."""
    if m is None and model.batch_features:
        return d
    try:
        return features_fast.sample(d, m, model.spec)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


async def reference_features(d: DailyArrays, m: MinuteArrays | None, model: ServedModel) -> Sample:
    """The reference features (polars, off the event loop) for a model the twin disagrees on."""
    try:
        return await asyncio.to_thread(features_fast.reference_sample, d, m, model.spec)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def enqueue(
    body: Body,
    model: ServedModel,
    d: DailyArrays,
    m: MinuteArrays | None,
    item: Item,
    batcher: Batcher[ServedModel],
    metrics: Metrics,
) -> Admitted:
    """Queue the item for a forward pass; 503 with ``Retry-After`` when the queue is full."""
    try:
        pending = batcher.enqueue(model, item)
    except QueueFullError as exc:
        metrics.rejected.inc()
        raise HTTPException(503, f"{exc}; retry shortly", headers={"Retry-After": "1"}) from None
    used = item.has_intra if isinstance(item, Sample) else False
    return Admitted(body, model, d, m, used, pending)


def render(a: Admitted, p: float, request_id: str) -> bytes:
    """The 200 body of an answered forecast (serialised once, by the declared response model)."""
    t = a.daily.sessions[-1]
    try:
        nxt: date | None = next_trading_day(t)
        notes: list[str] = []
    except CalendarHorizonError as exc:
        nxt, notes = None, [f"next session unknown: {exc}"]
    answer = ForecastResponse(
        request_id=request_id,
        symbol=a.body.symbol,
        decision_session=t,
        session=nxt,
        p_up=p,
        direction=direction(p),
        confidence=confidence(p),
        used_intraday=a.used_intraday,
        used_amount=a.model.spec.use_amount,
        model_version=a.model.version,
        last_bar_ts=last_bar_ts(a.daily, a.minutes),
        generated_at=datetime.now(UTC),
        warnings=notes,
    )
    return answer.model_dump_json().encode()
