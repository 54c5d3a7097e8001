"""A small closed-loop HTTP load generator (async httpx): ``concurrency`` workers, each sending
the next request as soon as its previous one answered, until ``requests`` are done.

Bodies are encoded once up front, so the client spends its time on HTTP, not on JSON.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import numpy as np


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    latencies_ms: tuple[float, ...] = ()

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


async def run_load(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    requests: int,
    warmup: int = 50,
    time_limit_s: float = 60.0,
    method: str = "POST",
) -> LoadResult:
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:

        async def send() -> httpx.Response:
            if method == "GET":
                return await http.get(url)
            return await http.post(url, content=body, headers=headers)

        for _ in range(warmup):
            (await send()).raise_for_status()
        latencies: list[float] = []
        errors = 0
        remaining = requests
        deadline = time.perf_counter() + time_limit_s

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    r = await send()
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += 0 if ok else 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000.0
    return LoadResult(
        concurrency=concurrency,
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        p50_ms=float(np.percentile(ms, 50)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        max_ms=float(ms.max()),
        latencies_ms=tuple(ms.tolist()),
    )


def merge(results: list[LoadResult]) -> LoadResult:
    """Several runs of the same configuration as one: all latencies, total requests and time."""
    ms = np.concatenate([np.asarray(r.latencies_ms) for r in results])
    return LoadResult(
        concurrency=results[0].concurrency,
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=sum(r.seconds for r in results),
        p50_ms=float(np.percentile(ms, 50)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        max_ms=float(ms.max()),
        latencies_ms=tuple(ms.tolist()),
    )
