"""The HTTP routes of the forecast server and the dependencies they reach the model through."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from cryptoarena.model.features import FeatureError
from cryptoarena.serving.deps import (
    FORECAST_BODY_OPENAPI,
    AdminDep,
    ForecastBody,
    ModelDep,
    ServingState,
    StateDep,
)
from cryptoarena.serving.inference import Prediction, Window, bars_arrays, elapsed_ms
from cryptoarena.serving.schemas import (
    BatchForecastRequest,
    BatchForecastResponse,
    ErrorResponse,
    ForecastRequest,
    ForecastResponse,
    HealthResponse,
    ModelInfoResponse,
    ReadyResponse,
    ReloadResponse,
    impossible_bars,
    validation_error,
)
from cryptoarena.serving.slot import LoadedModel
from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

logger = logging.getLogger(__name__)

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "No model loaded yet; the body says why."}
}
WITH_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not parseable JSON."},
    413: {"model": ErrorResponse, "description": "The body is over the size limit."},
    415: {"model": ErrorResponse, "description": "The body is not declared as JSON."},
    **UNAVAILABLE,
}


router = APIRouter()


def _check(
    req: ForecastRequest,
    bars: dict[str, np.ndarray],
    model: LoadedModel,
    state: ServingState,
    loc: tuple[str | int, ...],
) -> list[dict[str, Any]]:
    """Checks across columns, or that need the settings or the model (the schema did the rest)."""
    errors = [
        validation_error((*loc, "bars", column, i), msg, "impossible_bar", float(bars[column][i]))
        for column, i, msg in impossible_bars(bars)
    ]
    if req.symbol not in state.symbols:
        errors.append(
            validation_error(
                (*loc, "symbol"),
                f"unknown symbol {req.symbol!r}; this server forecasts {sorted(state.symbols)}",
                "unknown_symbol",
                req.symbol,
            )
        )
    need = int(model.info.min_bars)
    if len(req.bars) < need:
        errors.append(
            validation_error(
                (*loc, "bars", "ts"),
                f"too few bars: model version {model.version} needs at least {need}, got {len(req.bars)}",
                "too_few_bars",
                len(req.bars),
            )
        )
    return errors


def _response(
    req: ForecastRequest, pred: Prediction, model: LoadedModel, compute_ms: float
) -> ForecastResponse:
    base = req.bars.close[-1]
    returns = pred.log_returns
    if not np.all(np.isfinite(returns)):
        raise RuntimeError(f"model version {model.version} returned a non-finite forecast")
    return ForecastResponse(
        symbol=req.symbol,
        bar_ts_ns=req.bars.ts[-1],
        base_price=base,
        horizons_s=list(range(1, len(returns) + 1)),
        log_returns=returns.tolist(),
        prices=(base * np.exp(returns)).tolist(),
        quantiles=None
        if pred.quantiles is None
        else {k: v.tolist() for k, v in pred.quantiles.items()},
        model_name=str(model.info.name),
        model_version=model.version,
        compute_ms=compute_ms,
    )


@router.post(
    "/v1/forecast",
    response_model=ForecastResponse,
    responses=WITH_BODY,
    summary="Forecast the next 1…15 s from the most recent one-second bars",
    openapi_extra=FORECAST_BODY_OPENAPI,
)
async def forecast(req: ForecastBody, model: ModelDep, state: StateDep) -> Response:
    started = time.perf_counter()
    bars = bars_arrays(req.bars)
    errors = _check(req, bars, model, state, ("body",))
    if errors:
        raise RequestValidationError(errors)
    t0 = time.perf_counter()
    try:
        [pred] = await state.runner.predict(model, [bars])
    except FeatureError as exc:  # bars the schema allows but the features cannot use
        raise RequestValidationError(
            [validation_error(("body", "bars"), str(exc), "bad_bars", None)]
        ) from exc
    state.metrics.inference.observe(time.perf_counter() - t0)
    # Serialised here (pydantic, in Rust) and returned as is: FastAPI would validate the model
    # again and encode it through json.dumps, a third of the response cost for nothing.
    body = _response(req, pred, model, elapsed_ms(started)).model_dump_json()
    return Response(body, media_type="application/json")


@router.post(
    "/v1/forecast/batch",
    response_model=BatchForecastResponse,
    responses=WITH_BODY,
    summary="Several forecasts in one call (one model call for all windows)",
)
async def forecast_batch(
    req: BatchForecastRequest, model: ModelDep, state: StateDep
) -> BatchForecastResponse:
    started = time.perf_counter()
    arrays = [bars_arrays(item.bars) for item in req.items]
    errors = [
        e
        for i, (item, bars) in enumerate(zip(req.items, arrays, strict=True))
        for e in _check(item, bars, model, state, ("body", "items", i))
    ]
    if errors:
        raise RequestValidationError(errors)
    t0 = time.perf_counter()
    try:
        windows: list[Window] = list(arrays)
        preds = await state.runner.predict(model, windows)
    except FeatureError as exc:  # the message names the window index
        raise RequestValidationError(
            [validation_error(("body", "items"), str(exc), "bad_bars", None)]
        ) from exc
    state.metrics.inference.observe(time.perf_counter() - t0)
    ms = elapsed_ms(started)
    return BatchForecastResponse(
        forecasts=[_response(item, p, model, ms) for item, p in zip(req.items, preds, strict=True)],
        model_name=str(model.info.name),
        model_version=model.version,
        compute_ms=ms,
    )


@router.get("/v1/model", response_model=ModelInfoResponse, responses=UNAVAILABLE)
async def model_info(model: ModelDep, state: StateDep) -> ModelInfoResponse:
    info = model.info
    return ModelInfoResponse(
        name=str(info.name),
        version=model.version,
        run_id=str(info.run_id),
        uri=model.uri,
        horizon=int(info.horizon),
        window=int(info.window),
        min_bars=int(info.min_bars),
        quantiles=[float(q) for q in info.quantiles],
        metrics={str(k): float(v) for k, v in dict(info.metrics).items()},
        loaded_at=model.loaded_at,
        symbols=sorted(state.symbols),
        promotion=str(getattr(info, "promotion", "")),
        gate=str(getattr(info, "gate", "")),
    )


@router.post(
    "/v1/model/reload",
    response_model=ReloadResponse,
    responses={
        401: {"model": ErrorResponse, "description": "No admin token sent."},
        403: {"model": ErrorResponse, "description": "Wrong token, or admin disabled."},
        **UNAVAILABLE,
    },
    summary="Check the @champion alias now and swap if it moved (admin)",
)
async def reload_model(_: AdminDep, state: StateDep) -> ReloadResponse:
    result = await state.slot.refresh()
    return ReloadResponse(
        previous_version=result.previous_version, version=result.version, swapped=result.swapped
    )


@router.get("/health", response_model=HealthResponse, summary="The process is up")
async def health() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "No model loaded yet."}},
    summary="A model is loaded and forecasts can be served",
)
async def ready(state: StateDep, response: Response) -> ReadyResponse:
    model = state.slot.current
    if model is None:
        response.status_code = 503
        return ReadyResponse(ready=False, reason=state.slot.reason())
    return ReadyResponse(ready=True, model_version=model.version)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
    summary="Prometheus metrics",
)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
