"""What routes depend on: the app's state, the model of this request, the admin check."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from cryptoarena.config import Settings
from cryptoarena.serving.inference import Runner
from cryptoarena.serving.metrics import ServingMetrics
from cryptoarena.serving.schemas import ForecastRequest
from cryptoarena.serving.slot import LoadedModel, ModelSlot
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError


@dataclass
class ServingState:
    """Everything a request needs, built once per app."""

    settings: Settings
    slot: ModelSlot
    runner: Runner
    metrics: ServingMetrics
    symbols: frozenset[str]


async def get_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


StateDep = Annotated[ServingState, Depends(get_state)]


async def get_model(state: StateDep) -> LoadedModel:
    # async: FastAPI would run a plain def in its threadpool, a thread hop per request.
    # Taken once per request: a swap during this request does not affect it.
    return state.slot.get()


ModelDep = Annotated[LoadedModel, Depends(get_model)]


async def forecast_body(request: Request) -> ForecastRequest:
    """The body of POST /v1/forecast, parsed and validated in one pass (pydantic, in Rust).

    A ``ForecastRequest`` parameter would make FastAPI ``json.loads`` the body into Python
    objects first and validate those: twice the work on the hottest path. Errors keep FastAPI's
    shape (``loc`` starts with "body"); the route declares the schema for OpenAPI.
    """
    try:
        return ForecastRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


ForecastBody = Annotated[ForecastRequest, Depends(forecast_body)]
# For OpenAPI: the body schema and the 422 that FastAPI would have generated from a parameter.
FORECAST_BODY_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ForecastRequest"}}
        },
    },
    "responses": {
        "422": {
            "description": "Validation Error",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        }
    },
}


bearer = HTTPBearer(auto_error=False, description="settings.serving.admin_token")


async def require_admin(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    token = state.settings.serving.admin_token
    if credentials is None:
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})
    if token is None:
        raise HTTPException(
            403, "admin endpoints are disabled: ARENA_SERVING__ADMIN_TOKEN is unset"
        )
    if not secrets.compare_digest(
        credentials.credentials.encode(), token.get_secret_value().encode()
    ):
        raise HTTPException(403, "wrong admin token")


AdminDep = Annotated[None, Depends(require_admin)]
