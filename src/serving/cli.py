"""``arena serve``: the forecast server under uvicorn, host/port/workers from settings."""

from __future__ import annotations

import logging

import typer
from cryptoarena.config import get_settings

logger = logging.getLogger(__name__)


def serve(
    host: str | None = typer.Option(None, help="Bind address (default: settings.serving.host)."),
    port: int | None = typer.Option(None, help="Port (default: settings.serving.port)."),
    workers: int | None = typer.Option(
        None, help="Worker processes, each with its own model (default: settings.serving.workers)."
    ),
) -> None:
    """Serve 15-second forecasts from the registered @champion (FastAPI + uvicorn)."""
    import uvicorn
    from cryptoarena.serving.testing import APP_FACTORY

    settings = get_settings().serving
    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or settings.workers
    typer.echo(
        f"serving models:/{settings.model_name}@champion on http://{host}:{port} "
        f"({workers} worker{'s' if workers > 1 else ''}); docs at /docs"
    )
    # An import string + factory: every worker process builds its own app from the environment.
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level=get_settings().log_level.lower(),
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
