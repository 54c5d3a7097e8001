"""What the forecast server refuses: oversized, non-JSON, unparseable and impossible requests.

The size limit is checked on a real uvicorn server (in a thread, no model needed) over a raw
socket, because "refused before it is read" is only visible on the wire: the client announces a
huge body and sends none of it. The rest runs in-process against the real registry's champion.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest
import uvicorn
from cryptoarena.config import ServingSettings, Settings
from cryptoarena.http_deadline import deadline_protocol
from cryptoarena.serving.app import create_app
from cryptoarena.serving.client import bars_payload
from fastapi import FastAPI
from fastapi.testclient import TestClient

LIMIT = 64 * 1024


class NoChampion:
    """A registry with no champion: the server starts, the guard is all there is to test."""

    description = "an empty registry"

    def champion_version(self) -> str | None:
        return None

    def load(self, version: str) -> Any:
        raise AssertionError("nothing to load")


@contextmanager
def uvicorn_thread(app: FastAPI, request_timeout_s: float = 10.0) -> Iterator[int]:
    """The app under uvicorn with the servers' own request deadline (http_deadline)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    http = deadline_protocol(request_timeout_s)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", http=http))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def guarded_port() -> Iterator[int]:
    settings = Settings(serving=ServingSettings(poll_interval_s=3600, max_body_bytes=LIMIT))
    with uvicorn_thread(create_app(settings, source=NoChampion())) as port:
        yield port


def _raw(port: int, head: str, chunks: Sequence[bytes] = ()) -> str:
    """Send a request head (and optional body chunks); return the status line and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head.encode())
        for chunk in chunks:
            try:
                conn.sendall(chunk)
            except OSError:  # the server answered and closed: that is the point
                break
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = conn.recv(65536)  # times out (fails the test) if the server waits for more
            if not data:
                break
            answer += data
    return answer.decode(errors="replace")


def test_an_announced_huge_body_is_refused_before_any_of_it_is_read(guarded_port: int) -> None:
    head = (
        "POST /v1/forecast HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw(guarded_port, head)  # not one byte of the 1 GB is sent
    assert answer.startswith("HTTP/1.1 413"), answer
    assert f"the limit is {LIMIT} bytes" in answer and "ARENA_SERVING__MAX_BODY_BYTES" in answer
    assert time.monotonic() - started < 5


def test_a_chunked_body_is_cut_off_at_the_limit(guarded_port: int) -> None:
    head = (
        "POST /v1/forecast/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (16 * 1024, b" " * 16 * 1024)
    answer = _raw(guarded_port, head, [chunk] * 8)  # 128 KiB, twice the limit, never finished
    assert answer.startswith("HTTP/1.1 413"), answer


def test_a_body_within_the_limit_gets_through(guarded_port: int) -> None:
    body = b'{"symbol": "BTCUSDT"}'
    head = (
        "POST /v1/forecast HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    answer = _raw(guarded_port, head, [body])
    assert answer.startswith("HTTP/1.1 422"), answer  # past the guard, to the schema


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _requests_counted(port: int) -> dict[str, float]:
    """``arena_serving_requests_total`` of POST /v1/forecast by status, read over HTTP."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    counted: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("arena_serving_requests_total{") and 'route="/v1/forecast"' in line:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            counted[status] = float(line.rsplit(" ", 1)[1])
    return counted


def test_a_client_that_hangs_up_mid_body_is_a_499_in_one_line(guarded_port: int) -> None:
    # Before: uvicorn logged "Exception in ASGI application" (ClientDisconnect) with a
    # traceback and the request was counted as a 500.
    records = _Records()
    watched = [logging.getLogger("uvicorn.error"), logging.getLogger("cryptoarena.serving")]
    levels = [log.level for log in watched]
    for log in watched:
        log.addHandler(records)
        log.setLevel(logging.INFO)
    before = _requests_counted(guarded_port)
    try:
        head = (
            "POST /v1/forecast HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", guarded_port), timeout=10) as conn:
            conn.sendall(head.encode() + b'{"symbol": "BTCUSDT", "bars": {"ts": [1, 2,')
            conn.shutdown(socket.SHUT_WR)  # hang up with 960 bytes still owed
        deadline = time.monotonic() + 10
        counted = _requests_counted(guarded_port)
        while counted.get("499", 0.0) == before.get("499", 0.0) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the server's own counter, not waiting blind
            counted = _requests_counted(guarded_port)
    finally:
        for log, level in zip(watched, levels, strict=True):
            log.removeHandler(records)
            log.setLevel(level)
    assert counted.get("499", 0.0) == before.get("499", 0.0) + 1, counted
    assert counted.get("500", 0.0) == before.get("500", 0.0), counted
    lines = [r.getMessage() for r in records.records]
    assert not any("Exception in ASGI application" in m for m in lines), lines
    assert not any(r.exc_info for r in records.records), lines
    assert [m for m in lines if "disconnected" in m] == [
        "client disconnected mid-request: POST /v1/forecast"
    ]


def _closed_within(conn: socket.socket, seconds: float) -> float:
    """How long until the server closed the connection (it sends nothing first)."""
    started = time.monotonic()
    conn.settimeout(seconds)
    assert conn.recv(65536) == b""  # socket.timeout (the test fails) if the server waits on
    return time.monotonic() - started


@pytest.fixture(scope="module")
def impatient_port() -> Iterator[int]:
    settings = Settings(serving=ServingSettings(poll_interval_s=3600, request_timeout_s=1.0))
    app = create_app(settings, source=NoChampion())
    with uvicorn_thread(app, settings.serving.request_timeout_s) as port:
        yield port


def test_a_client_sending_its_headers_slowly_is_closed_at_the_deadline(
    impatient_port: int,
) -> None:
    # Before: uvicorn waited for the rest of the headers as long as the client liked.
    with socket.create_connection(("127.0.0.1", impatient_port), timeout=10) as conn:
        conn.sendall(b"POST /v1/forecast HTTP/1.1\r\nHost: t\r\n")  # never finished
        assert _closed_within(conn, 8) < 5


def test_a_client_stalling_its_body_is_closed_and_counted_as_499(impatient_port: int) -> None:
    before = _requests_counted(impatient_port).get("499", 0.0)
    head = (
        "POST /v1/forecast HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", impatient_port), timeout=10) as conn:
        conn.sendall(head.encode() + b'{"symbol": ')  # 89 bytes never come
        assert _closed_within(conn, 8) < 5
    deadline = time.monotonic() + 10
    while _requests_counted(impatient_port).get("499", 0.0) == before:
        assert time.monotonic() < deadline, "the stalled request was never counted"
        time.sleep(0.05)


def test_a_kept_alive_connection_is_not_cut_while_it_is_quick(impatient_port: int) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", impatient_port), timeout=10) as conn:
        for _ in range(3):
            conn.sendall(request)
            answer = b""
            while not answer.endswith(b"}"):
                data = conn.recv(65536)
                assert data, "closed"
                answer += data
            assert answer.startswith(b"HTTP/1.1 200"), answer


# -- in-process, with the real champion ------------------------------------------------------


@pytest.fixture(scope="module")
def client(registry: Any, settings_for: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(registry, poll_interval_s=3600))) as c:
        yield c


@pytest.fixture()
def good(recent_bars: pd.DataFrame) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "bars": bars_payload(recent_bars.iloc[-100:])}


@pytest.mark.parametrize("path", ["/v1/forecast", "/v1/forecast/batch"])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_not_declared_as_json_is_a_415(
    client: TestClient, good: dict[str, Any], path: str, content_type: str
) -> None:
    payload = good if path == "/v1/forecast" else {"items": [good]}
    r = client.post(path, content=json.dumps(payload), headers={"content-type": content_type})
    assert r.status_code == 415, r.text
    assert "application/json" in r.json()["detail"]
    ok = client.post(
        path,
        content=json.dumps(payload),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path", ["/v1/forecast", "/v1/forecast/batch"])
@pytest.mark.parametrize("text", ['{"symbol": "BTCUSDT", "bars": {', "not json", "{'a': 1}"])
def test_unparseable_json_is_a_400_with_one_line(client: TestClient, path: str, text: str) -> None:
    r = client.post(path, content=text, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.startswith("body is not valid JSON: ")
    assert "\n" not in detail


def _loc_msgs(r: Any) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {".".join(map(str, e["loc"])): e["msg"] for e in r.json()["detail"]}


def test_physically_impossible_bars_are_a_422_naming_field_and_index(
    client: TestClient, good: dict[str, Any]
) -> None:
    bad = json.loads(json.dumps(good))
    bars = bad["bars"]
    bars["high"][7], bars["low"][7] = bars["low"][7] - 1.0, bars["high"][7]  # high < low
    bars["buy_volume"][12] = bars["volume"][12] + 1.0
    bars["sell_volume"][13] = bars["volume"][13] + 0.5
    bars["close"][20] = bars["high"][20] + 5.0
    got = _loc_msgs(client.post("/v1/forecast", json=bad))
    assert "high" in got["body.bars.high.7"] and "below low" in got["body.bars.high.7"]
    assert "exceeds volume" in got["body.bars.buy_volume.12"]
    assert "exceeds volume" in got["body.bars.sell_volume.13"]
    assert "outside [low" in got["body.bars.close.20"]
    assert "body.bars.close.7" not in got  # the swapped bar's close is inside its range

    batch = {"items": [good, bad]}
    got = _loc_msgs(client.post("/v1/forecast/batch", json=batch))
    assert "body.items.1.bars.high.7" in got and not any(k.startswith("body.items.0") for k in got)


def test_a_bool_is_not_a_price_and_bars_must_be_one_second_apart(
    client: TestClient, good: dict[str, Any]
) -> None:
    typed = json.loads(json.dumps(good))
    typed["bars"]["close"][3] = True
    typed["bars"]["trades"][4] = False
    got = _loc_msgs(client.post("/v1/forecast", json=typed))
    assert set(got) == {"body.bars.close.3", "body.bars.trades.4"}

    gapped = json.loads(json.dumps(good))
    ts = gapped["bars"]["ts"]
    gapped["bars"]["ts"] = [t + (2_000_000_000 if i >= 50 else 0) for i, t in enumerate(ts)]
    got = _loc_msgs(client.post("/v1/forecast", json=gapped))
    assert "one second apart" in got["body.bars.ts"] and "ts[50]" in got["body.bars.ts"]
    assert "3.0 s after ts[49]" in got["body.bars.ts"]


def test_the_refusals_are_in_the_openapi_schema(client: TestClient) -> None:
    for path in ("/v1/forecast", "/v1/forecast/batch"):
        responses = client.get("/openapi.json").json()["paths"][path]["post"]["responses"]
        assert {"400", "413", "415", "422"} <= set(responses)
