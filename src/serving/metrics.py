"""Prometheus metrics of the forecast server: requests, latency, inference, model version.

Each app has its own ``CollectorRegistry`` (several apps live in one test process). Requests are
counted by a plain ASGI middleware (cheaper than ``BaseHTTPMiddleware``) and labelled with the
route's path template, never the raw path, so random URLs cannot blow up the label set.
A client that hangs up before its body arrived is counted as ``499`` (nginx's "client closed
request"), not as a server error, and logged in one INFO line without a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping, Sequence
from typing import Any

from cryptoarena.serving.slot import LoadedModel
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

# Milliseconds matter here: the target is p99 ≤ 5 ms.
# "Client closed request": the client left before the answer (nginx's code; not sent, counted).
CLIENT_CLOSED = 499
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "arena_serving_requests",
            "HTTP requests by route, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "arena_serving_request_seconds",
            "Time from request start to the end of the response body.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "arena_serving_inference_seconds",
            "Features + model time per forecast call (a micro-batch counts once).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "arena_serving_batch_windows",
            "Windows per model call (micro-batches and /v1/forecast/batch).",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.model_version = Gauge(
            "arena_serving_model_version",
            "Registry version of the model being served (0: none).",
            registry=self.registry,
        )
        self.model = Info("arena_serving_model", "The model being served.", registry=self.registry)
        self.swaps = Counter(
            "arena_serving_model_swaps",
            "Champion swaps (the first load counts).",
            registry=self.registry,
        )
        self.model_version.set(0)

    def model_loaded(self, model: LoadedModel) -> None:
        info = model.info
        try:
            self.model_version.set(float(model.version))
        except ValueError:  # registry versions are integers, but be safe
            self.model_version.set(-1)
        self.model.info(
            {"name": str(info.name), "version": model.version, "run_id": str(info.run_id)}
        )
        self.swaps.inc()


class MetricsMiddleware:
    """Counts every HTTP request and times it, by route template."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app's route table, read when a request was not routed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # Routing rewrites scope (a mount moves its prefix into root_path): keep the request.
        request = {
            "type": "http",
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
            "method": scope["method"],
        }

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # Raised by the body read when the client hung up: nothing to answer, and no
            # server error (uncaught, the server would log a traceback and count a 500).
            status = CLIENT_CLOSED
            logger.info("client disconnected mid-request: %s %s", scope["method"], scope["path"])
        finally:
            route = _route_label(scope, request, self.routes)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _route_label(
    scope: MutableMapping[str, Any], request: Scope, routes: Sequence[BaseRoute]
) -> str:
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    # Not routed by FastAPI: a plain Starlette route (/openapi.json), a mount (the docs'
    # static files), or refused before routing (the body guard's 413/415). Label it with the
    # template of the route it would reach, never the raw path (random URLs would blow up the
    # label set).
    for candidate in routes:
        match, _ = candidate.matches(dict(request))
        path = getattr(candidate, "path", None)
        if match is not Match.NONE and isinstance(path, str):
            return path
    return "unmatched"
