"""The forecast server's /docs work offline, /metrics names them, and `arena serve` checks its port.

No model is needed for any of it: the app runs on a registry without a champion.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from cryptoarena.config import ServingSettings, Settings
from cryptoarena.serving.app import create_app
from fastapi.testclient import TestClient

ARENA = str(Path(sys.executable).with_name("arena"))


class NoChampion:
    description = "an empty registry"

    def champion_version(self) -> str | None:
        return None

    def load(self, version: str) -> Any:
        raise AssertionError("nothing to load")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(serving=ServingSettings(poll_interval_s=3600)), source=NoChampion())
    with TestClient(app, base_url="http://arena.test") as c:
        yield c


def test_docs_page_references_no_external_host_and_its_assets_are_served(
    client: TestClient,
) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    # Every absolute URL anywhere in the page (attributes, inline script) must be this server.
    for url in re.findall(r"""https?://[^\s"'<>)]+""", html):
        assert urlsplit(url).hostname == "arena.test", f"/docs loads {url} from outside"
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    refs += re.findall(r"""url\s*:\s*["']([^"']+)["']""", html)  # the OpenAPI document
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in refs), refs
    assert any(ref.endswith("swagger-ui.css") for ref in refs), refs
    for ref in refs:
        asset = client.get(urljoin("http://arena.test/docs", ref))
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    assert "validatorUrl" in html  # switched off: no badge fetched from validator.swagger.io
    assert client.get("/redoc").status_code == 404  # its bundle would need a CDN


def test_metrics_label_the_docs_routes_as_themselves(client: TestClient) -> None:
    for path in ("/docs", "/openapi.json", "/docs/static/swagger-ui.css", "/no/such/page"):
        client.get(path)
    client.post("/v1/forecast", content=b"{}", headers={"content-type": "text/plain"})
    text = client.get("/metrics").text
    assert 'route="/docs",status="200"' in text
    assert 'route="/openapi.json",status="200"' in text
    assert 'route="/docs/static",status="200"' in text  # the mount, not each file
    assert 'route="unmatched",status="404"' in text
    assert 'method="POST",route="/v1/forecast",status="415"' in text  # refused before routing


@pytest.fixture()
def busy_port() -> Iterator[int]:
    """A port another process (here: this one) is listening on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_serve_reports_a_port_in_use_in_one_line_before_loading_a_model(
    tmp_path: Path, busy_port: int
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    env["ARENA_MLFLOW__TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    started = time.monotonic()
    proc = subprocess.run(
        [ARENA, "serve", "--port", str(busy_port)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"127.0.0.1:{busy_port}" in lines[0] and "already in use" in lines[0]
    assert "--port" in lines[0]
    # Nothing was loaded or even looked up: no registry was created, no server started.
    assert not (tmp_path / "mlflow.db").exists()
    assert "serving models:/" not in proc.stdout
    assert time.monotonic() - started < 60
