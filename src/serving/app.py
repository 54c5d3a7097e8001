"""The forecast server: ``create_app(settings)``.

The champion (``models:/<name>@champion``) is loaded once in ``lifespan`` (the Forecaster brings
its own feature pipeline and scaler from the same MLflow version) and polled for moves every
``settings.serving.poll_interval_s``. The server starts and answers /health even when the
registry has no champion yet: /ready and the forecast routes say 503 with the reason until one
appears. Routes reach the model through the ``ModelDep`` dependency (see routes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from cryptoarena.config import Settings, load_settings, secret_values, unknown_env_names
from cryptoarena.console import setup_logging
from cryptoarena.serving.deps import ServingState
from cryptoarena.serving.docs import add_offline_docs
from cryptoarena.serving.guard import BodyGuard
from cryptoarena.serving.inference import InferenceMode, Runner
from cryptoarena.serving.metrics import MetricsMiddleware, ServingMetrics
from cryptoarena.serving.schemas import json_safe_error
from cryptoarena.serving.slot import (
    LoadedModel,
    ModelSlot,
    ModelSource,
    ModelUnavailable,
    RegistrySource,
    poll_champion,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5


def create_app(
    settings: Settings,
    *,
    source: ModelSource | None = None,
    inference: InferenceMode | None = None,
) -> FastAPI:
    """The FastAPI app; ``source`` defaults to the MLflow registry named in settings."""
    from cryptoarena.serving.routes import router

    metrics = ServingMetrics()

    def on_swap(model: LoadedModel) -> None:
        metrics.model_loaded(model)
        gc.freeze()  # the new model's objects too (see lifespan); cheap, no collection

    slot = ModelSlot(
        source or RegistrySource(settings.serving.model_name, settings.mlflow.tracking_uri),
        on_swap=on_swap,
    )
    state = ServingState(
        settings=settings,
        slot=slot,
        runner=Runner(inference or settings.serving.inference, metrics.batch_size.observe),
        metrics=metrics,
        symbols=frozenset({settings.data.symbol}),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await slot.refresh()
        except ModelUnavailable as exc:
            # Serve anyway: /health answers, /ready says why, the poller keeps trying.
            logger.warning("starting without a model: %s", exc)
        # torch, mlflow and pandas leave ~700k long-lived objects: a full collection walks them
        # all (~260 ms here), stalling every request in flight whenever one comes due. Collect
        # once now, before serving, and move the survivors out of the collector's sight.
        gc.collect()
        gc.freeze()
        poller = asyncio.create_task(
            poll_champion(slot, settings.serving.poll_interval_s), name="champion-poller"
        )
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            state.runner.close()

    app = FastAPI(
        title="cryptoarena forecast server",
        version="1",
        summary="15-second BTCUSDT forecasts from the registered champion LSTM.",
        lifespan=lifespan,
        docs_url=None,  # served from the package below, not from a CDN
        redoc_url=None,
    )
    app.state.serving = state
    app.include_router(router)
    add_offline_docs(app)
    # Added last = outermost: the metrics count the guard's 413/415 answers too.
    app.add_middleware(BodyGuard, max_bytes=settings.serving.max_body_bytes)
    # The route table the metrics label unrouted requests by (FastAPI keeps an included
    # router as one opaque entry of app.routes: list its routes themselves).
    labels = [*router.routes, *(r for r in app.routes if hasattr(r, "path"))]
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=labels)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if broken is not None:  # not JSON at all: nothing to name field by field
            return JSONResponse({"detail": f"body is not valid JSON: {_json_problem(broken)}"}, 400)
        return JSONResponse({"detail": [json_safe_error(e) for e in errors]}, 422)

    @app.exception_handler(ModelUnavailable)
    async def _unavailable(request: Request, exc: ModelUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )

    return app


def _json_problem(error: Any) -> str:
    # pydantic: "Invalid JSON: EOF while parsing a value at line 1 column 5"; FastAPI's own
    # parser: "JSON decode error" with the json module's message in ctx["error"].
    ctx = error.get("ctx") or {}
    return str(ctx.get("error") or error.get("msg", "")).removeprefix("Invalid JSON: ")


def app_from_env() -> FastAPI:
    """Factory for uvicorn (``--factory``): settings from the environment."""
    settings = load_settings()
    # The same console/log-file split as the CLI (a bare basicConfig handler would also bind
    # the stderr of the moment and print every library's chatter).
    setup_logging(settings.log_level, settings.log_file, secrets=secret_values(settings))
    for problem in unknown_env_names():
        logger.warning("%s", problem)
    return create_app(settings)
