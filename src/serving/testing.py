"""A real forecast server in a subprocess, for tests, the demo and the benchmark.

``run_server_process(settings_env)`` binds a listening socket on a free port in THIS process and
hands it to uvicorn (``--fd``), so there is no window in which another process can take the
port. It waits for /health, yields the base URL, and stops the server on exit (SIGTERM, then
SIGKILL). The server's output goes to a log file whose tail is shown if it fails to start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
from cryptoarena.config import Settings

logger = logging.getLogger(__name__)

APP_FACTORY = "cryptoarena.serving.app:app_from_env"


class ServerStartError(RuntimeError):
    """The server process exited or did not answer /health in time."""


def settings_env(settings: Settings) -> dict[str, str]:
    """The ARENA_* variables that give a child process the serving-relevant ``settings``."""
    env = {
        "ARENA_HOME": str(settings.home),
        "ARENA_LOG_LEVEL": settings.log_level,
        "ARENA_DATA__SYMBOL": settings.data.symbol,
        "ARENA_DATA__SAMPLE_DIR": str(settings.data.sample_dir),
        "ARENA_MLFLOW__TRACKING_URI": settings.mlflow.tracking_uri,
        "ARENA_SERVING__MODEL_NAME": settings.serving.model_name,
        "ARENA_SERVING__POLL_INTERVAL_S": str(settings.serving.poll_interval_s),
        "ARENA_SERVING__INFERENCE": settings.serving.inference,
        "ARENA_SERVING__MAX_BODY_BYTES": str(settings.serving.max_body_bytes),
    }
    if settings.serving.admin_token is not None:
        env["ARENA_SERVING__ADMIN_TOKEN"] = settings.serving.admin_token.get_secret_value()
    return env


def _listen_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def run_server_process(
    settings_env: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    startup_timeout_s: float = 60.0,
    ready: bool = False,
    log_path: Path | None = None,
    workers: int = 1,
) -> Iterator[str]:
    """Start ``uvicorn`` on a free port with ``settings_env`` added to the environment.

    Yields the base URL once /health answers (or /ready, with ``ready=True``).
    """
    sock = _listen_socket(host)
    port = sock.getsockname()[1]
    base_url = f"http://{host}:{port}"
    env = {**os.environ, **settings_env, "PYTHONUNBUFFERED": "1"}
    env.setdefault("OMP_NUM_THREADS", "1")  # torch must not grab every core of the machine
    own_log = log_path is None
    log = log_path or Path(tempfile.mkstemp(prefix="arena-serve-", suffix=".log")[1])
    cmd = [sys.executable, "-m", "cryptoarena.serving.testing", "--fd", str(sock.fileno())]
    cmd += ["--workers", str(workers)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),)
        )
    sock.close()  # the child holds its own copy of the listening socket
    try:
        _wait_until_up(proc, base_url, "/ready" if ready else "/health", startup_timeout_s, log)
        logger.info("forecast server pid %d at %s", proc.pid, base_url)
        yield base_url
    finally:
        _stop(proc)
        if own_log:
            log.unlink(missing_ok=True)


def _wait_until_up(
    proc: subprocess.Popen[bytes], base_url: str, path: str, timeout_s: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerStartError(f"server exited with code {proc.returncode}:\n{_tail(log)}")
            try:
                if client.get(path).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    _stop(proc)
    raise ServerStartError(f"server did not answer {path} within {timeout_s} s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def serve_inherited_socket(fd: int, workers: int = 1) -> None:
    """Run the app from the environment on an inherited listening TCP socket.

    Not ``uvicorn --fd``: uvicorn wraps the descriptor as an AF_UNIX socket, so asyncio skips
    TCP_NODELAY on accepted connections, and Nagle + delayed ACK add ~40 ms to every response.
    """
    sock = socket.socket(fileno=fd)  # family and type read from the descriptor itself
    serve_socket(sock, workers=workers)


def serve_socket(sock: socket.socket, *, workers: int = 1, log_level: str = "warning") -> None:
    """Run the app from the environment on an already bound, listening socket."""
    import uvicorn
    from cryptoarena.config import get_settings
    from cryptoarena.http_deadline import deadline_protocol

    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        http=deadline_protocol(get_settings().serving.request_timeout_s),
        access_log=False,
        log_level=log_level,
        lifespan="on",
        workers=workers,
    )
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="forecast server on an inherited socket")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    cli = parser.parse_args()
    serve_inherited_socket(cli.fd, cli.workers)
