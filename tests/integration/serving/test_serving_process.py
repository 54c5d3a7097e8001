"""The forecast server as a real uvicorn process, and the ForecastClient the worker uses."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.records import NS_PER_S
from cryptoarena.model.registry import load_forecaster, set_alias
from cryptoarena.serving.client import ForecastClient, ForecastUnavailable, bars_payload
from cryptoarena.serving.testing import run_server_process

from tests.floats import assert_float32_close, assert_prices_close

pytestmark = pytest.mark.slow

TOKEN = "process-admin-token"


@pytest.fixture(scope="module")
def server(registry: Any) -> Iterator[str]:
    env = {
        "ARENA_MLFLOW__TRACKING_URI": registry.tracking_uri,
        "ARENA_SERVING__MODEL_NAME": registry.name,
        "ARENA_SERVING__POLL_INTERVAL_S": "0.2",
        "ARENA_SERVING__ADMIN_TOKEN": TOKEN,
    }
    with run_server_process(env, ready=True) as base_url:
        yield base_url


def clock_at(bars: pd.DataFrame, after_close_s: float = 0.1) -> SimClock:
    """Exchange time just after the last bar closed (the replay's clock)."""
    return SimClock(int(bars["ts"].iloc[-1]) + NS_PER_S + int(after_close_s * NS_PER_S))


async def test_forecasts_over_http_equal_the_in_process_model(
    server: str, registry: Any, recent_bars: pd.DataFrame
) -> None:
    champion = load_forecaster(f"models:/{registry.name}/1", tracking_uri=registry.tracking_uri)
    window = recent_bars.iloc[-150:]
    expected = champion.predict([window])[0]
    async with httpx.AsyncClient(base_url=server) as http:
        r = await http.post(
            "/v1/forecast", json={"symbol": "BTCUSDT", "bars": bars_payload(window)}
        )
    assert r.status_code == 200, r.text
    assert_float32_close(r.json()["log_returns"], expected)

    async with ForecastClient(server, clock=clock_at(window)) as client:
        assert await client.health()
        forecast = await client.forecast("BTCUSDT", window)
    assert_float32_close(forecast.log_returns, expected)
    assert_prices_close(forecast.prices, float(window["close"].iloc[-1]), expected)
    assert forecast.bar_ts_ns == int(window["ts"].iloc[-1])
    assert (forecast.model_name, forecast.model_version) == (registry.name, "1")


async def test_client_refuses_stale_bars_and_stale_answers(
    server: str, recent_bars: pd.DataFrame
) -> None:
    window = recent_bars.iloc[-100:]
    async with ForecastClient(server, clock=clock_at(window, 5.0), max_age_s=2.0) as client:
        with pytest.raises(ForecastUnavailable, match="stale"):
            await client.forecast("BTCUSDT", window)

    class SlowMarket(SimClock):
        """Exchange time jumps 2.5 s on every reading: the answer arrives too late."""

        def now_ns(self) -> int:
            self.advance_to(self._now + int(2.5 * NS_PER_S))
            return super().now_ns()

    start = int(window["ts"].iloc[-1]) + NS_PER_S - int(2.5 * NS_PER_S)
    async with ForecastClient(server, clock=SlowMarket(start), max_age_s=2.0) as client:
        with pytest.raises(ForecastUnavailable, match="stale: forecast for bar"):
            await client.forecast("BTCUSDT", window)


async def test_client_does_not_retry_a_bad_request(server: str, recent_bars: pd.DataFrame) -> None:
    window = recent_bars.iloc[-100:]
    before = await _count(server, "/v1/forecast", "422")
    async with ForecastClient(server, clock=clock_at(window), retries=2) as client:
        with pytest.raises(ForecastUnavailable, match=r"HTTP 422: body.symbol: unknown symbol"):
            await client.forecast("ETHUSDT", window)
    assert await _count(server, "/v1/forecast", "422") == before + 1


class SilentServer:
    """Accepts TCP connections and never answers: what a hung server looks like."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


async def test_client_times_out_and_retries_once(recent_bars: pd.DataFrame) -> None:
    silent = SilentServer()
    window = recent_bars.iloc[-100:]
    try:
        async with ForecastClient(
            silent.url, timeout_s=0.2, retries=1, clock=clock_at(window)
        ) as client:
            assert not await client.health()
            started = time.monotonic()
            with pytest.raises(ForecastUnavailable, match=r"timeout after 0\.2 s"):
                await client.forecast("BTCUSDT", window)
            assert time.monotonic() - started < 3.0
        # /ready, then /v1/model (2 attempts), then /v1/forecast (2 attempts).
        assert len(silent.conns) == 5
    finally:
        silent.close()


async def _count(base_url: str, route: str, status: str) -> float:
    async with httpx.AsyncClient(base_url=base_url) as http:
        text = (await http.get("/metrics")).text
    m = re.search(
        rf'arena_serving_requests_total\{{method="\w+",route="{re.escape(route)}",status="{status}"\}} (\S+)',
        text,
    )
    return float(m.group(1)) if m else 0.0


async def test_promotion_during_a_request_stream_fails_no_request(
    server: str, registry: Any, recent_bars: pd.DataFrame
) -> None:
    n = 100
    bodies = [
        {"symbol": "BTCUSDT", "bars": bars_payload(recent_bars.iloc[i : i + n])} for i in range(20)
    ]
    seen: list[tuple[float, str]] = []
    failures: list[str] = []
    stop = asyncio.Event()

    async def stream(worker: int) -> None:
        async with httpx.AsyncClient(base_url=server, timeout=10) as http:
            i = worker
            while not stop.is_set():
                try:
                    r = await http.post("/v1/forecast", json=bodies[i % len(bodies)])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                else:
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        seen.append((time.monotonic(), r.json()["model_version"]))
                i += 1

    workers = [asyncio.create_task(stream(w)) for w in range(4)]
    try:
        # Traffic flows and is answered by the champion before the promotion.
        deadline = time.monotonic() + 20
        while sum(1 for _, v in seen if v == registry.champion) < 20:
            assert time.monotonic() < deadline and not failures, failures[:3]
            await asyncio.sleep(0.05)
        promoted_at = time.monotonic()
        await asyncio.to_thread(
            set_alias,
            registry.name,
            "champion",
            registry.challenger,
            tracking_uri=registry.tracking_uri,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if sum(1 for _, v in seen if v == registry.challenger) >= 40:
                break
    finally:
        stop.set()
        await asyncio.gather(*workers)
        set_alias(registry.name, "champion", registry.champion, tracking_uri=registry.tracking_uri)
        async with httpx.AsyncClient(base_url=server) as http:
            r = await http.post("/v1/model/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.json()["version"] == registry.champion

    assert failures == []
    versions = Counter(v for _, v in seen)
    assert versions[registry.champion] > 0 and versions[registry.challenger] >= 40, versions
    # Once the new version answered, the old one never came back.
    first_new = next(i for i, (_, v) in enumerate(seen) if v == registry.challenger)
    assert all(v == registry.challenger for _, v in seen[first_new + 8 :])
    assert all(t >= promoted_at for t, v in seen if v == registry.challenger)


async def test_server_without_champion_answers_health_and_503(
    tmp_path: Any, recent_bars: pd.DataFrame
) -> None:
    env = {"ARENA_MLFLOW__TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    window = recent_bars.iloc[-100:]
    with run_server_process(env) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/health")).status_code == 200
            ready = await http.get("/ready")
            assert ready.status_code == 503 and "no @champion" in ready.json()["reason"]
        async with ForecastClient(url, clock=clock_at(window), retries=1) as client:
            assert not await client.health()
            with pytest.raises(ForecastUnavailable, match="HTTP 503: no model loaded"):
                await client.forecast("BTCUSDT", window)
        assert await _count(url, "/v1/forecast", "503") == 2  # one retry, then give up


def test_arena_serve_uses_host_and_port_from_settings(registry: Any, tmp_path: Any) -> None:
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:  # a free port, for the settings (arena serve binds it itself)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "ARENA_MLFLOW__TRACKING_URI": registry.tracking_uri,
        "ARENA_SERVING__HOST": "127.0.0.1",
        "ARENA_SERVING__PORT": str(port),
        "ARENA_SERVING__WORKERS": "1",
    }
    arena = Path(sys.executable).parent / "arena"
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([str(arena), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["version"] == "1"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)  # uvicorn re-raises the signal after its graceful shutdown
        log.close()
    assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
