"""`arena dashboard` on a busy port: one `error:` line and a non-zero exit before any URL; with
--any-free-port it listens elsewhere and its one URL line says which port and why."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.trading_kit import ARENA, ROOT, arena_env, start_arena

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another server is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        yield int(other.getsockname()[1])


def _served_url(proc: subprocess.Popen[bytes], url_file: Path, log: Path) -> str:
    """The URL the dashboard wrote once it listens (it writes the file whole, then a newline)."""
    deadline = time.monotonic() + 60
    while not (url_file.is_file() and url_file.read_text().endswith("\n")):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "no URL file in 60 s"
        time.sleep(0.1)
    return url_file.read_text().strip()


def test_a_busy_port_is_one_error_line_before_any_url(tmp_path: Path, busy_port: int) -> None:
    env = arena_env(tmp_path)
    done = subprocess.run(
        [ARENA, "dashboard", "--port", str(busy_port)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot listen on 127.0.0.1:") and "--port" in lines[0]
    assert "http://" not in done.stderr


def test_any_free_port_takes_another_port_and_says_which(tmp_path: Path, busy_port: int) -> None:
    url_file = tmp_path / "run" / "dashboard.url"
    log = tmp_path / "dashboard.log"
    args = ["dashboard", "--port", str(busy_port), "--any-free-port", "--url-file", str(url_file)]
    proc = start_arena(args, arena_env(tmp_path), log)
    try:
        url = _served_url(proc, url_file, log)
        assert url.startswith("http://127.0.0.1:") and f":{busy_port}/" not in url
        with urllib.request.urlopen(f"{url}api/health", timeout=10) as response:
            assert response.status == 200
        url_lines = [line for line in log.read_text().splitlines() if "http://" in line]
        assert url_lines == [f"dashboard: {url} (port {busy_port} is busy)"]
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_dashboard_closes_a_connection_whose_headers_stall(tmp_path: Path) -> None:
    # Before: `arena dashboard` (uvicorn) waited for the rest of the headers forever.
    url_file = tmp_path / "run" / "dashboard.url"
    env = {**arena_env(tmp_path), "ARENA_DASHBOARD__REQUEST_TIMEOUT_S": "1"}
    args = ["dashboard", "--port", "0", "--url-file", str(url_file)]
    proc = start_arena(args, env, tmp_path / "dashboard.log")
    try:
        url = _served_url(proc, url_file, tmp_path / "dashboard.log")
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: t\r\n")  # never finished
            started = time.monotonic()
            conn.settimeout(8)
            assert conn.recv(65536) == b""  # times out (fails) while the server waits on
            assert time.monotonic() - started < 5
    finally:
        proc.terminate()
        proc.wait(20)
