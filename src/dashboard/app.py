"""The dashboard app: ``create_app(settings)`` opens the journal read-only (beside a worker that
owns it), starts the live stream, and serves the API under /api and the built UI at /."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cryptoarena.config import Settings
from cryptoarena.dashboard.live import LiveHub
from cryptoarena.dashboard.reader import DashboardReader
from cryptoarena.dashboard.registry_view import RegistryView
from cryptoarena.dashboard.report_child import ReportChild
from cryptoarena.dashboard.routes import router
from cryptoarena.dashboard.season_routes import router as season_router
from cryptoarena.dashboard.tail import EmbeddedTail, QueryTail, Tail
from cryptoarena.dashboard.throttle import TokenThrottle
from cryptoarena.trading.risk.killswitch import kill_switch
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 15.0  # how long a stop waits for the background reads to end

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Everything comes from this server: no CDN, no inline script (Chart.js sets inline styles).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def open_reader(settings: Settings) -> tuple[DashboardReader, Any]:
    """A read-only journal (no writer lock, no spill replay: the worker owns those) and a tail
    of it: the SQLite files read-only on the embedded store, time-window queries on MongoDB."""
    from cryptoarena.trading.journal import Journal

    journal = Journal.open(settings, run_id="dashboard", readonly=True)
    embedded = settings.mongo.uri is None
    tail: Tail
    if embedded:
        tail = EmbeddedTail(settings.mongo.embedded_dir, settings.mongo.database)
    else:
        tail = QueryTail(journal)
    child = ReportChild(settings.mongo)
    return DashboardReader(journal, tail, embedded=embedded, report_child=child), journal


def _warm(reader: DashboardReader) -> None:
    run = reader.latest_run_id()
    if run is None:
        return
    try:
        reader.leaderboard(run)
        reader.equity(run, 600)
    except Exception as exc:  # only a head start: the request computes it otherwise
        logger.info("dashboard: warm-up skipped: %s", exc)


def _wait_idle(warm: threading.Thread, registry: RegistryView) -> None:
    warm.join(SHUTDOWN_WAIT_S)
    if warm.is_alive():
        logger.warning("dashboard: the warm-up still runs after %.0f s; closing", SHUTDOWN_WAIT_S)
    if not registry.stop(SHUTDOWN_WAIT_S):
        logger.warning("dashboard: the registry read still runs after %.0f s", SHUTDOWN_WAIT_S)


def create_app(
    settings: Settings, *, reader: DashboardReader | None = None, static_dir: Path | None = None
) -> FastAPI:
    static = static_dir or STATIC_DIR

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        journal = None
        if reader is None:
            app.state.reader, journal = open_reader(settings)
        else:
            app.state.reader = reader
        app.state.hub = LiveHub(app.state.reader, settings.dashboard.poll_interval_s)
        app.state.registry.get()  # starts the first (slow) registry read in the background
        await app.state.hub.start()
        # The first leaderboard of a long run takes seconds: compute it before a page asks.
        warm = threading.Thread(
            target=_warm, args=(app.state.reader,), name="dashboard-warm", daemon=True
        )
        warm.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            # A thread still reading the journal or the registry while they close, or while the
            # interpreter exits, can crash the process (a SIGSEGV after Ctrl-C): let them end.
            await asyncio.to_thread(_wait_idle, warm, app.state.registry)
            if journal is not None:
                app.state.reader.close()
                journal.close()

    app = FastAPI(
        title="cryptoarena dashboard",
        version="1",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.kill = kill_switch(settings)
    board = settings.dashboard
    app.state.kill_throttle = TokenThrottle(
        board.kill_max_failures, board.kill_failure_window_s, board.kill_lockout_s
    )
    app.state.registry = RegistryView(settings)
    app.include_router(router)
    app.include_router(season_router)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    index = static / "index.html"
    if (static / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=static / "assets"), name="assets")

    @app.get("/", include_in_schema=False, response_model=None)
    def home() -> Response:
        if not index.is_file():
            return PlainTextResponse(
                "the web UI is not built: run `make web` (npm ci + vite build into "
                "src/dashboard/static); the API is under /api/docs",
                status_code=503,
            )
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    for name in ("favicon.svg",):
        if (static / name).is_file():
            app.add_api_route(
                f"/{name}",
                lambda p=static / name: FileResponse(p),
                include_in_schema=False,
                response_model=None,
            )
    return app
