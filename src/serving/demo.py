"""Demo step for serving: the real server on the champion the model step registered.

Starts uvicorn in a subprocess (as ``arena serve`` would), asks it for forecasts on real shipped
bars it has never seen through the client the trading worker uses, with the replay's clock,
prints them next to what the market actually did 15 s later, and stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import pandas as pd
from cryptoarena.config import Settings
from cryptoarena.serving.client import Forecast
from rich.console import Console
from rich.table import Table

logger = logging.getLogger(__name__)

HELD_OUT = 30_000  # bars of the shipped day after the quick model's training span
FORECASTS = 20


async def _forecasts(
    base_url: str, bars: pd.DataFrame, need: int, n: int
) -> tuple[list[Forecast], list[float]]:
    from cryptoarena.clock import SimClock
    from cryptoarena.data.records import NS_PER_S
    from cryptoarena.serving.client import ForecastClient

    clock = SimClock()
    out: list[Forecast] = []
    latencies: list[float] = []
    async with ForecastClient(base_url, clock=clock, timeout_s=2.0) as client:
        # Warm-up (connection, the client learning min_bars): not counted.
        clock.advance_to(int(bars["ts"].iloc[need - 1]) + NS_PER_S)
        await client.forecast("BTCUSDT", bars.iloc[:need])
        for i in range(n):
            window = bars.iloc[i : i + need]
            clock.advance_to(int(window["ts"].iloc[-1]) + NS_PER_S)  # replay time: bar closed
            started = time.perf_counter()
            out.append(await client.forecast("BTCUSDT", window))
            latencies.append((time.perf_counter() - started) * 1000)
    return out, latencies


def demo_step(settings: Settings, console: Console, quick: bool) -> str:
    import httpx
    from cryptoarena.model.datasets import load_bars
    from cryptoarena.serving.testing import run_server_process, settings_env

    name = settings.serving.model_name
    bars = load_bars(sample_dir=settings.data.sample_dir)
    console.print(f"starting the forecast server on models:/{name}@champion …")
    with run_server_process(settings_env(settings)) as url:
        ready = httpx.get(f"{url}/ready", timeout=5).json()
        if not ready["ready"]:
            console.print(f"[yellow]server up but not ready: {ready['reason']}")
            return f"serving: server answered /health but had no model ({ready['reason']})"
        info = httpx.get(f"{url}/v1/model", timeout=5).json()
        need = int(info["min_bars"])
        n = FORECASTS if quick else 3 * FORECASTS
        sample = bars.iloc[HELD_OUT : HELD_OUT + need + n + 15].reset_index(drop=True)
        forecasts, latencies = asyncio.run(_forecasts(url, sample, need, n))
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
    table = Table(title=f"{name} v{info['version']} over HTTP, on real bars it never saw")
    for col in ("bar (UTC)", "close", "forecast +15 s", "actual +15 s", "client ms"):
        table.add_column(col, justify="right")
    for i, f in enumerate(forecasts[:5]):
        close_now = float(sample["close"].iloc[i + need - 1])
        actual = float(sample["close"].iloc[i + need - 1 + 15])
        table.add_row(
            str(np.datetime64(f.bar_ts_ns, "ns").astype("datetime64[s]")),
            f"{close_now:,.2f}",
            f"{f.prices[-1]:,.2f}",
            f"{actual:,.2f}",
            f"{latencies[i]:.1f}",
        )
    console.print(table)
    p50, worst = float(np.percentile(latencies, 50)), float(np.max(latencies))
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('arena_serving_requests_total{method="POST",route="/v1/forecast"')
    )
    console.print(
        f"{len(forecasts)} forecasts through ForecastClient: p50 {p50:.1f} ms, max {worst:.1f} ms "
        f"(round trip); the server's /metrics counted {served:.0f} (1 warm-up)"
    )
    return (
        f"serving: uvicorn served models:/{name}@champion (v{info['version']}): "
        f"{len(forecasts)} forecasts on real bars, p50 {p50:.1f} ms round trip"
    )
