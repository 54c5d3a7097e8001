"""The load generator of bench/serving.py: ``wrk`` (C, epoll), driven by bench/wrk_request.lua.

A closed loop: ``concurrency`` keep-alive connections on one wrk thread, each sending the next
request as soon as the previous answer arrived, for a fixed time. wrk costs a few microseconds of
CPU per request where the async httpx generator (bench/loadgen.py) cost ~0.8 ms on the same two
cores, so the client no longer caps what can be measured. Install: ``apt-get install -y wrk``
(Debian/Ubuntu; ``brew install wrk`` on macOS). Loopback only: the URL must be 127.0.0.1.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bench.loadgen import LoadResult

SCRIPT = Path(__file__).with_name("wrk_request.lua")
SAMPLE_POINTS = 5000
INSTALL_HINT = "wrk is not installed: `sudo apt-get install -y wrk` (or `brew install wrk`)"


class WrkMissing(RuntimeError):
    pass


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing(INSTALL_HINT)
    return path


def children_cpu_s() -> float:
    """CPU seconds of this process's waited-for children (wrk runs are; servers are reaped last)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str, body: bytes, *, concurrency: int, seconds: float, method: str = "POST"
) -> tuple[LoadResult, float]:
    """One closed-loop run; returns the result and the CPU seconds wrk itself used."""
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"bench load goes to loopback only, not {host}")
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        cmd = [
            wrk_path(), "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
            "-s", str(SCRIPT), url, "--", f.name, method,
        ]  # fmt: skip
        cpu0 = children_cpu_s()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        cpu = children_cpu_s() - cpu0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    return _result(raw, concurrency), cpu


def _result(raw: dict[str, Any], concurrency: int) -> LoadResult:
    errors = sum(int(v) for v in raw["errors"].values())
    q = np.asarray(raw["quantiles_us"], dtype=np.float64)  # (p, µs) rows
    # Evenly spaced points of the quantile function stand in for the sample when rounds are
    # merged (weighted by requests): a grid point at p99.99 must not weigh as much as the median.
    probs = (np.arange(SAMPLE_POINTS) + 0.5) * 100.0 / SAMPLE_POINTS
    sample = tuple((np.interp(probs, q[:, 0], q[:, 1]) / 1000.0).tolist())
    return LoadResult(
        concurrency=concurrency,
        requests=int(raw["requests"]),
        errors=errors,
        seconds=raw["duration_us"] / 1e6,
        p50_ms=_at(q, 50.0),
        p90_ms=_at(q, 90.0),
        p99_ms=_at(q, 99.0),
        max_ms=raw["max_us"] / 1000.0,
        latencies_ms=sample,
    )


def _at(q: np.ndarray, p: float) -> float:
    return float(q[np.argmin(np.abs(q[:, 0] - p)), 1] / 1000.0)


def merge_wrk(results: list[LoadResult]) -> LoadResult:
    """Pool runs: each run's quantile grid counts in proportion to its requests."""
    samples = np.concatenate([np.asarray(r.latencies_ms) for r in results])
    weights = np.concatenate(
        [np.full(len(r.latencies_ms), r.requests / max(len(r.latencies_ms), 1)) for r in results]
    )
    order = np.argsort(samples)
    samples, cum = samples[order], np.cumsum(weights[order])
    cum /= cum[-1]

    def pct(p: float) -> float:
        return float(samples[min(int(np.searchsorted(cum, p / 100.0)), len(samples) - 1)])

    return LoadResult(
        concurrency=results[0].concurrency,
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=sum(r.seconds for r in results),
        p50_ms=pct(50.0),
        p90_ms=pct(90.0),
        p99_ms=pct(99.0),
        max_ms=max(r.max_ms for r in results),
    )
