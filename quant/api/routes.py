"""The HTTP routes: signals, forecast, models, health, readiness and metrics."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from quant.api import champion
from quant.api import forecast as forecast_flow
from quant.api.auth import require
from quant.api.batcher import Batcher
from quant.api.decode import decode_forecast
from quant.api.freshness import freshness
from quant.api.keys import KeyInfo
from quant.api.schemas import (
    SYMBOL_CHARS,
    SYMBOL_MAX,
    ErrorBody,
    ForecastResponse,
    Health,
    ModelsOut,
    ModelVersionOut,
    Ready,
    SignalList,
    SignalOut,
)
from quant.api.serving import ServedModel, ServiceState, signal_model
from quant.signals import signals_between

router = APIRouter()
ReadKey = Annotated[KeyInfo, Depends(require("signals:read"))]
ForecastKey = Annotated[KeyInfo, Depends(require("forecast"))]

# A session as a query parameter: ISO YYYY-MM-DD only (pydantic's lax ``date`` would also take
# ``0`` as 1970-01-01); the pattern and ``format: date`` are what the schema promises.
SessionQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        json_schema_extra={"format": "date"},
        examples=["2024-06-28"],
    ),
]


def _session(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: {value!r} is not a calendar date (YYYY-MM-DD)") from None


SymbolPath = Annotated[
    str,
    Path(min_length=1, max_length=SYMBOL_MAX, pattern=f"^{SYMBOL_CHARS}+$", examples=["000300.SH"]),
]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "malformed JSON",
        401: "missing, invalid or revoked API key",
        403: "the key lacks the scope",
        404: "unknown symbol, or no signal published yet",
        413: "request body too large",
        422: "invalid request: schema, sessions, OHLC, order or history",
        503: "not ready (no model or snapshot) or forecast queue full (see Retry-After)",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _check_symbol(state: ServiceState, symbol: str) -> None:
    if symbol not in state.known_symbols():
        known = ", ".join(sorted(state.known_symbols())) or "none"
        raise HTTPException(404, f"unknown symbol {symbol!r}; known: {known}")


@router.get(
    "/v1/signals/{symbol}/latest",
    tags=["signals"],
    summary="The newest published signal of a symbol",
    response_model=SignalOut,
    responses={
        200: {"description": "latest session, newest version"},
        **_errors(401, 403, 404, 422, 503),
    },
)
async def latest(symbol: SymbolPath, request: Request, _: ReadKey) -> Response:
    state = _state(request)
    view = state.view
    request.state.snapshot_version = view.version
    _check_symbol(state, symbol)
    body = view.latest.get(symbol)
    if body is None:
        if view.con is None:
            raise HTTPException(503, f"no readable snapshot: {view.error}")
        raise HTTPException(404, f"no signal published yet for {symbol}")
    request.state.model_version = signal_model(body)
    return Response(body, media_type="application/json")


@router.get(
    "/v1/signals/{symbol}",
    tags=["signals"],
    summary="Published signals of a symbol for sessions in [start, end]",
    description="Sessions are ISO dates; an empty interval (start after end) has no signals.",
    response_model=SignalList,
    responses=_errors(401, 403, 404, 422, 503),
)
def signal_range(
    symbol: SymbolPath,
    request: Request,
    _: ReadKey,
    start: Annotated[SessionQuery, Query(description="first session (YYYY-MM-DD)")] = None,
    end: Annotated[SessionQuery, Query(description="last session (YYYY-MM-DD)")] = None,
    all_versions: Annotated[bool, Query(description="every version, not only the newest")] = False,
) -> SignalList:
    state = _state(request)
    view = state.view
    request.state.snapshot_version = view.version
    _check_symbol(state, symbol)
    first, last = _session("start", start), _session("end", end)
    if view.con is None:
        raise HTTPException(503, f"no readable snapshot: {view.error}")
    empty = first is not None and last is not None and first > last
    sigs = (
        []
        if empty
        else signals_between(view.cursor(), symbol, first, last, all_versions=all_versions)
    )
    if sigs:
        request.state.model_version = sigs[-1].model_version
    return SignalList(
        symbol=symbol,
        start=first,
        end=last,
        signals=[
            SignalOut.model_validate({**s.as_dict(), "snapshot_version": view.version})
            for s in sigs
        ],
        snapshot_version=view.version,
    )


@router.post(
    "/v1/forecast",
    tags=["forecast"],
    summary="P(up) of the next session from bars the caller sends",
    response_model=ForecastResponse,
    responses=_errors(400, 401, 403, 404, 413, 422, 503),
    # The body is decoded by msgspec straight from bytes, pydantic answering what it refuses
    # (quant.api.decode); the schema is declared here and added to the components in app.openapi.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ForecastRequest"}}
            },
        }
    },
)
async def forecast(request: Request, _: ForecastKey) -> Response:
    state = _state(request)
    batcher: Batcher[ServedModel] = request.app.state.batcher
    model = state.model  # pinned: a hot reload from here on does not affect this request
    with batcher.admission():
        try:
            body = decode_forecast(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(
                exc.errors(include_url=False, include_input=False)
            ) from None
        if model is not None:
            request.state.model_version = model.version
        model, d, m = forecast_flow.check(body, model, state, request.app.state.settings)
        if model.fast_features:
            item = forecast_flow.features(d, m, model)
        else:
            item = await forecast_flow.reference_features(d, m, model)
        metrics = request.app.state.metrics
        admitted = forecast_flow.enqueue(body, model, d, m, item, batcher, metrics)
    p, _gate = await admitted.pending
    return Response(
        forecast_flow.render(admitted, p, request.state.request_id), media_type="application/json"
    )


@router.get(
    "/v1/models",
    tags=["models"],
    summary="Registered model versions and the champion",
    response_model=ModelsOut,
    responses=_errors(401, 403),
)
def models(request: Request, _: ReadKey) -> ModelsOut:
    state = _state(request)
    view, model = state.view, state.model
    cur = view.cursor() if view.con is not None else None  # own cursor: the poller shares con
    champ = champion.champion(cur)
    recs = champion.versions(cur)
    champ_id = champ.version_id if champ else None
    return ModelsOut(
        champion=champ_id,
        serving=model.version if model else None,
        feature_warmup=model.spec.warmup if model else None,
        uses_amount=model.spec.use_amount if model else None,
        intraday_symbol=model.intraday_symbol if model else None,
        intraday_minutes=model.spec.intraday_minutes if model else None,
        versions=[
            ModelVersionOut(
                version_id=r.version_id,
                parent_id=r.parent_id,
                config_hash=r.config_hash,
                train_start=r.train_start,
                train_end=r.train_end,
                metrics={
                    k: v
                    for k, v in r.metrics.items()
                    if isinstance(v, float | int | str) or v is None
                },
                sha256=r.sha256,
                created_at=r.created_at,
                champion=r.version_id == champ_id,
            )
            for r in recs
        ],
    )


@router.get("/healthz", tags=["health"], summary="The process is up", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    tags=["health"],
    summary="Model loaded and snapshot readable; stale store and calendar horizon warnings",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "not ready"}},
)
def readyz(request: Request, response: Response) -> Ready:
    state = _state(request)
    view, model = state.view, state.model
    checks = {"model": "ok" if model else (state.model_error or "not loaded")}
    try:
        view.cursor().execute("SELECT 1").fetchall()
        checks["snapshot"] = "ok"
    except Exception as exc:
        checks["snapshot"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    response.status_code = 200 if ready else 503
    fresh = freshness(view.stale, request.app.state.calendar_warn_days)
    return Ready(
        ready=ready,
        model_version=model.version if model else None,
        snapshot_version=view.version,
        checks=checks,
        stale=bool(fresh.stale),
        calendar_horizon=fresh.horizon,
        warnings=fresh.warnings,
    )


@router.get(
    "/metrics",
    tags=["health"],
    summary="Prometheus text format",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    state = _state(request)
    m.set_model(state.model.version if state.model else None)
    m.set_snapshot(state.view.version)
    m.set_freshness(freshness(state.view.stale, request.app.state.calendar_warn_days))
    return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
