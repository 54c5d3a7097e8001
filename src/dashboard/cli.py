"""``arena dashboard``: serve the dashboard (API, live stream, web UI) over the journal."""

from __future__ import annotations

import errno
import gc
import logging
import socket
import sys
from pathlib import Path

import typer
from cryptoarena.config import Settings, get_settings

logger = logging.getLogger(__name__)


def bind(host: str, port: int, *, any_free: bool) -> tuple[socket.socket, str | None]:
    """A listening socket on ``host:port`` (bound here, so a busy port fails before any URL is
    printed), or with ``any_free`` a free port the system picks; the second item says why the
    port differs. Raises OSError with a user-facing message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    note = None
    try:
        sock.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not any_free:
            sock.close()
            hint = (
                " (another server is using it: pick one with --port)"
                if (exc.errno == errno.EADDRINUSE)
                else ""
            )
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
        sock.bind((host, 0))
        note = f"port {port} is busy"
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock, note


def prefer_latency(settings: Settings) -> None:
    """Requests before throughput: hand the GIL over more often (``switch_interval_ms``), and
    keep the cyclic collector's full passes short. Start-up's objects (modules, classes, the
    app) are never garbage: frozen, no later pass walks them again. Without this a full
    pass (every few seconds while a fast replay is tailed: each poll's documents outlive a few
    young passes) walked them too and stopped every request for 100-300 ms on this machine
    (bench/soak.py; docs/benchmarks.md, "The 30-day soak")."""
    sys.setswitchinterval(settings.dashboard.switch_interval_ms / 1000)
    gc.collect()
    gc.freeze()


def dashboard(
    host: str | None = typer.Option(None, help="Bind address (default: settings.dashboard.host)."),
    port: int | None = typer.Option(
        None, min=0, max=65535, help="Port (default: settings.dashboard.port, 8080)."
    ),
    any_free_port: bool = typer.Option(
        False, "--any-free-port", help="If the port is busy, listen on a free one (and say which)."
    ),
    url_file: Path | None = typer.Option(
        None, help="Write the URL to this file once listening (for scripts waiting on it)."
    ),
) -> None:
    """The web dashboard over the journal: leaderboard, equity, trades, forecasts, risk, kill switch."""
    import uvicorn
    from cryptoarena.dashboard.app import create_app
    from cryptoarena.http_deadline import deadline_protocol  # uvicorn: not for `arena --help`

    settings = get_settings()
    bind_host = host or settings.dashboard.host
    try:
        sock, note = bind(
            bind_host,
            settings.dashboard.port if port is None else port,
            any_free=any_free_port,
        )
    except OSError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    try:
        app = create_app(settings)
    except Exception as exc:
        sock.close()
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    url = f"http://{bind_host}:{sock.getsockname()[1]}/"
    typer.echo(f"dashboard: {url}" + (f" ({note})" if note else ""), err=True)
    if url_file is not None:
        url_file.parent.mkdir(parents=True, exist_ok=True)
        url_file.write_text(url + "\n")
    prefer_latency(settings)
    # Open event streams would hold a graceful shutdown forever: give them a second.
    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=1,
        http=deadline_protocol(settings.dashboard.request_timeout_s),
    )
    uvicorn.Server(config).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
