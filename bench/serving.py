"""Serving benchmark: this forecast server against ``mlflow models serve``, same model, same bars.

Run: ``.venv/bin/python -m bench.serving [--seconds 5] [--rounds 4] [--modes batch_inline,batch,inline]
[--concurrency 1,8] [--workers 1] [--client wrk|httpx] [--tracking-uri URI --model NAME]``

Needs ``wrk`` (``sudo apt-get install -y wrk``); ``--client httpx`` uses the slower pure-Python
generator (bench/loadgen.py) instead. Without ``--tracking-uri`` it trains the tiny model
(``train_tiny``) into a temporary MLflow registry. It then registers a pyfunc wrapper of the same
version (bench/serving_pyfunc.py, bars in, like our server), starts each server as a real process
(``--workers``, default 1, for both), checks that each returns the in-process model's forecast
for the payload, and drives them with the same closed-loop load generator at each concurrency,
for ``--seconds`` per run, in alternating rounds with all servers up side by side (fair under
background load). Prints a Markdown table and JSON; server and client CPU per request come
from /proc and getrusage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from bench.loadgen import LoadResult, merge, run_load
from bench.wrk import WrkMissing, merge_wrk, run_wrk, wrk_path

ROOT = Path(__file__).resolve().parents[1]
JSON = {"content-type": "application/json"}
HELD_OUT = 30_000  # bars of the shipped day after the tiny model's training span


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mlflow_serve(model_uri: str, tracking_uri: str, log: Path, workers: int) -> Iterator[str]:
    port = _free_port()
    cmd = [
        str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model_uri,
        "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", str(workers),
    ]  # fmt: skip
    # Both URIs: mlflow.set_tracking_uri/set_registry_uri also export them to the environment.
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_REGISTRY_URI": tracking_uri,
        "OMP_NUM_THREADS": "1",
        # mlflow execs `uvicorn` by name: the venv's bin must be on PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited: see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/ping", timeout=2).status_code == 200:
                    break
            time.sleep(0.25)
        else:
            raise RuntimeError(f"mlflow models serve did not start: see {log}")
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def register_pyfunc(tracking_uri: str, name: str, version: str) -> str:
    """Register the bars-in pyfunc wrapper of ``name``/``version``; returns its models:/ URI."""
    import mlflow
    from cryptoarena.model.tracking import ensure_experiment, tracking_context

    wrapper = f"{name}-pyfunc"
    with tracking_context(tracking_uri) as client:
        exp = ensure_experiment(client, "bench-serving", tracking_uri)
        with mlflow.start_run(experiment_id=exp, run_name="pyfunc-wrapper"):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(ROOT / "bench" / "serving_pyfunc.py"),
                model_config={
                    "model_uri": f"models:/{name}/{version}",
                    "tracking_uri": tracking_uri,
                },
                registered_model_name=wrapper,
                pip_requirements=[f"mlflow=={mlflow.__version__}"],
            )
    return f"models:/{wrapper}/{info.registered_model_version}"


def servers_cpu_s() -> float:
    """CPU seconds used so far by every process this benchmark started (from /proc).

    Idle servers use next to nothing, so the change across one load run is the CPU of the
    server under load: a per-request cost that background load on the machine hardly moves.
    """
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid → (parent, cpu s)
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(path.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, (parent, _) in stats.items() if parent in frontier} - mine
        mine |= frontier
    return sum(stats[pid][1] for pid in mine)


class Driver:
    """The same closed-loop generator for every server: wrk (default) or async httpx."""

    def __init__(self, client: str, seconds: float) -> None:
        self.client = client
        self.seconds = seconds
        if client == "wrk":
            try:
                wrk_path()
            except WrkMissing as exc:
                raise SystemExit(f"{exc}; or run with --client httpx (slower)") from None

    def warm(self, url: str, body: bytes, method: str) -> None:
        if self.client == "wrk":
            run_wrk(url, body, concurrency=2, seconds=1, method=method)
        else:
            asyncio.run(run_load(url, body, concurrency=2, requests=200, warmup=0, method=method))

    def run(self, url: str, body: bytes, concurrency: int, method: str) -> tuple[LoadResult, float]:
        """One measured run: the result and the client's own CPU seconds."""
        if self.client == "wrk":
            return run_wrk(url, body, concurrency=concurrency, seconds=self.seconds, method=method)
        cpu0 = time.process_time()
        result = asyncio.run(
            run_load(
                url, body, concurrency=concurrency, requests=10**9, warmup=0,
                time_limit_s=self.seconds, method=method,
            )
        )  # fmt: skip
        return result, time.process_time() - cpu0

    def merge(self, results: list[LoadResult]) -> LoadResult:
        return merge_wrk(results) if self.client == "wrk" else merge(results)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each measured run")
    p.add_argument("--client", choices=("wrk", "httpx"), default="wrk")
    p.add_argument("--modes", default="batch_inline,batch,inline")
    p.add_argument("--concurrency", default="1,8")
    p.add_argument("--tracking-uri", default=None, help="bench this registry's champion")
    p.add_argument("--model", default="btcusdt-15s")
    p.add_argument("--skip-mlflow", action="store_true")
    p.add_argument("--workers", type=int, default=1, help="worker processes of BOTH servers")
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds per server")
    args = p.parse_args()

    import torch
    from cryptoarena.model.datasets import load_bars
    from cryptoarena.model.registry import get_alias_version, load_forecaster
    from cryptoarena.serving.client import bars_payload
    from cryptoarena.serving.testing import run_server_process

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    uri = args.tracking_uri or f"sqlite:///{tmp / 'mlflow.db'}"
    if args.tracking_uri is None:
        from cryptoarena.model.train import train_tiny

        version = train_tiny(uri, args.model).version
    else:
        version = get_alias_version(args.model, "champion", tracking_uri=uri) or ""
        if not version:
            raise SystemExit(f"no {args.model}@champion in {uri}")
    forecaster = load_forecaster(f"models:/{args.model}/{version}", tracking_uri=uri)
    n_bars = forecaster.info.min_bars
    window = load_bars().iloc[HELD_OUT : HELD_OUT + n_bars].reset_index(drop=True)
    expected = forecaster.predict([window])[0]
    ours = json.dumps({"symbol": "BTCUSDT", "bars": bars_payload(window)}).encode()
    split = window.to_dict(orient="split")
    theirs = json.dumps(
        {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
    ).encode()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    driver = Driver(args.client, args.seconds)
    load_before = os.getloadavg()
    targets: list[tuple[str, str, bytes, str]] = []  # label, url, body, method
    with contextlib.ExitStack() as stack:
        # Every server runs side by side and the rounds alternate between them, so load from
        # other work on the machine falls on all of them alike.
        for mode in args.modes.split(","):
            env = {
                "ARENA_MLFLOW__TRACKING_URI": uri,
                "ARENA_SERVING__MODEL_NAME": args.model,
                "ARENA_SERVING__INFERENCE": mode,
                "ARENA_LOG_LEVEL": "WARNING",
            }
            base = stack.enter_context(run_server_process(env, ready=True, workers=args.workers))
            got = httpx.post(base + "/v1/forecast", content=ours, headers=JSON, timeout=10).json()
            np.testing.assert_allclose(got["log_returns"], expected, rtol=1e-6, atol=1e-12)
            targets.append((f"cryptoarena ({mode})", base + "/v1/forecast", ours, "POST"))
            if not any(t[3] == "GET" for t in targets):
                # The harness's own ceiling: an endpoint that does nothing, same client.
                targets.append(("GET /health (harness ceiling)", base + "/health", b"", "GET"))
        if not args.skip_mlflow:
            pyfunc_uri = register_pyfunc(uri, args.model, version)
            base = stack.enter_context(
                mlflow_serve(pyfunc_uri, uri, tmp / "mlflow-serve.log", args.workers)
            )
            r = httpx.post(base + "/invocations", content=theirs, headers=JSON, timeout=30)
            r.raise_for_status()
            np.testing.assert_allclose(r.json()["predictions"][0], expected, rtol=1e-6, atol=1e-12)
            targets.append(("mlflow models serve", base + "/invocations", theirs, "POST"))
        for _, url, body, method in targets:
            driver.warm(url, body, method)
        parts: dict[tuple[str, int], list[LoadResult]] = {}
        cpu: dict[tuple[str, int], float] = {}
        client_cpu: dict[tuple[str, int], float] = {}
        for round_no in range(args.rounds):
            for label, url, body, method in targets:
                for c in concurrency:
                    key = (label, c)
                    cpu0 = servers_cpu_s()
                    result, client_s = driver.run(url, body, c, method)
                    cpu[key] = cpu.get(key, 0.0) + servers_cpu_s() - cpu0
                    client_cpu[key] = client_cpu.get(key, 0.0) + client_s
                    parts.setdefault(key, []).append(result)
                    print(
                        f"round {round_no}: {label} c={c}: {result.rps:.0f} req/s, "
                        f"p50 {result.p50_ms:.2f} p99 {result.p99_ms:.2f} max {result.max_ms:.1f} ms",
                        flush=True,
                    )
    rows = []
    for (label, c), results in parts.items():
        merged = driver.merge(results)
        row = {"server": label, **merged.__dict__, "rps": merged.rps}
        row["server_cpu_ms"] = 1000.0 * cpu[(label, c)] / max(merged.requests, 1)
        row["client_cpu_ms"] = 1000.0 * client_cpu[(label, c)] / max(merged.requests, 1)
        rows.append(row)
    rows.sort(key=lambda r: (r["server"], r["concurrency"]))
    for row in rows:
        row.pop("latencies_ms", None)
        print(json.dumps(row))

    machine = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "workers": args.workers,
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "client": args.client,
        "model": f"{args.model} v{version}",
        "window": forecaster.info.window,
        "payload_bars": n_bars,
        "payload_bytes": {"cryptoarena": len(ours), "mlflow": len(theirs)},
    }
    print(json.dumps({"machine": machine}))
    print()
    print(
        "| server | concurrency | requests | errors | p50 ms | p99 ms | max ms | req/s "
        "| server CPU ms/req | client CPU ms/req |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['server']} | {row['concurrency']} | {row['requests']} | {row['errors']} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.1f} | {row['rps']:.0f} | "
            f"{row['server_cpu_ms']:.2f} | {row['client_cpu_ms']:.3f} |"
        )


if __name__ == "__main__":
    main()
