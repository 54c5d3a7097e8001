"""The forecast client retries under the one retry policy: 5xx and Retry-After, on a fake sleep,
against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.records import BAR_COLUMNS, NS_PER_S
from cryptoarena.serving.client import ForecastClient, ForecastUnavailable

T0 = 1_700_000_000 * NS_PER_S


class Flaky:
    """/v1/model: one 503 with Retry-After, then the model; /v1/forecast: ``fail`` 500s first."""

    def __init__(self, fail: int) -> None:
        self.hits: Counter[str] = Counter()
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict[str, Any], **headers: str) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                flaky.hits[self.path] += 1
                if flaky.hits[self.path] == 1:
                    self._send(503, {"detail": "no model yet"}, **{"Retry-After": "0.15"})
                else:
                    self._send(200, {"min_bars": 2})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                flaky.hits[self.path] += 1
                if flaky.hits[self.path] <= fail:
                    self._send(500, {"detail": "boom"})
                    return
                self._send(
                    200,
                    {
                        "symbol": "BTCUSDT",
                        "bar_ts_ns": T0 + NS_PER_S,
                        "log_returns": [0.0] * 15,
                        "prices": [100.0] * 15,
                        "model_name": "m",
                        "model_version": "3",
                    },
                )

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def bars() -> pd.DataFrame:
    frame = {c: [100.0, 100.0] for c in BAR_COLUMNS}
    frame["ts"] = [T0, T0 + NS_PER_S]
    return pd.DataFrame(frame)


def serve(fail: int) -> Iterator[Flaky]:
    flaky = Flaky(fail)
    yield flaky
    flaky.server.shutdown()
    flaky.server.server_close()


@pytest.fixture
def once() -> Iterator[Flaky]:
    yield from serve(fail=1)


@pytest.fixture
def always() -> Iterator[Flaky]:
    yield from serve(fail=100)


async def test_5xx_and_retry_after_are_retried_on_the_policy(
    once: Flaky, bars: pd.DataFrame
) -> None:
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    clock = SimClock(T0 + 2 * NS_PER_S + NS_PER_S // 10)
    async with ForecastClient(
        once.url, timeout_s=0.5, retries=2, clock=clock, sleep=fake_sleep
    ) as client:
        forecast = await client.forecast("BTCUSDT", bars)
    assert forecast.model_version == "3"
    assert once.hits == {"/v1/model": 2, "/v1/forecast": 2}
    assert sleeps[0] == 0.15  # the server's Retry-After, longer than the backoff
    assert 0.025 <= sleeps[1] <= 0.05  # the policy's first backoff, jittered down at most half


async def test_attempts_run_out_with_the_last_reason(always: Flaky, bars: pd.DataFrame) -> None:
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    clock = SimClock(T0 + 2 * NS_PER_S + NS_PER_S // 10)
    async with ForecastClient(
        always.url, timeout_s=0.5, retries=2, clock=clock, sleep=fake_sleep
    ) as client:
        with pytest.raises(ForecastUnavailable, match="HTTP 500: boom"):
            await client.forecast("BTCUSDT", bars)
    assert always.hits["/v1/forecast"] == 3 and len(sleeps) == 3  # 1 for /v1/model, 2 here
    assert all(s <= client.retry_policy.max_s for s in sleeps[1:])
