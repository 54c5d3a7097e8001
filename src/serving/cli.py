"""``arena serve``: the forecast server under uvicorn, host/port/workers from settings."""

from __future__ import annotations

import errno
import logging
import socket

import typer
from cryptoarena.config import get_settings

logger = logging.getLogger(__name__)


def listen_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a port in use is reported before any model loads.

    (uvicorn alone binds only after the app's lifespan has loaded the champion, then fails
    with a traceback.) Raises OSError with a one-line reason.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot bind to {host}:{port}: unknown host ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise OSError(
            f"cannot serve on {host}:{port}: {why}; pick another with --port or ARENA_SERVING__PORT"
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(
    host: str | None = typer.Option(None, help="Bind address (default: settings.serving.host)."),
    port: int | None = typer.Option(None, help="Port (default: settings.serving.port)."),
    workers: int | None = typer.Option(
        None, help="Worker processes, each with its own model (default: settings.serving.workers)."
    ),
) -> None:
    """Serve 15-second forecasts from the registered @champion (FastAPI + uvicorn)."""
    from cryptoarena.serving.testing import serve_socket

    settings = get_settings().serving
    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or settings.workers
    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    port = sock.getsockname()[1]  # the real one when --port 0
    typer.echo(
        f"serving models:/{settings.model_name}@champion on http://{host}:{port} "
        f"({workers} worker{'s' if workers > 1 else ''}); docs at /docs"
    )
    # An import string + factory: every worker process builds its own app from the environment.
    serve_socket(sock, workers=workers, log_level=get_settings().log_level.lower())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
