"""``arena dashboard``: serve the dashboard (API, live stream, web UI) over the journal."""

from __future__ import annotations

import logging

import typer
from cryptoarena.config import get_settings

logger = logging.getLogger(__name__)


def dashboard(
    host: str | None = typer.Option(None, help="Bind address (default: settings.dashboard.host)."),
    port: int | None = typer.Option(
        None, min=0, max=65535, help="Port (default: settings.dashboard.port, 8080)."
    ),
) -> None:
    """The web dashboard over the journal: leaderboard, equity, trades, forecasts, risk, kill switch."""
    import uvicorn
    from cryptoarena.dashboard.app import create_app

    settings = get_settings()
    bind_host = host or settings.dashboard.host
    bind_port = settings.dashboard.port if port is None else port
    try:
        app = create_app(settings)
    except Exception as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(f"dashboard: http://{bind_host}:{bind_port}/", err=True)
    # Open event streams would hold a graceful shutdown forever: give them a second.
    uvicorn.run(
        app, host=bind_host, port=bind_port, log_level="warning", timeout_graceful_shutdown=1
    )


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
