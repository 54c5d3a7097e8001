"""Soak: a season at live density through the real worker, journal and dashboard.

    .venv/bin/python -m bench.soak [--days 30] [--speed 2000] [--seed 7] [--checkpoints 1,10,30]
    .venv/bin/python -m bench.soak dashboard --journal DIR     # the dashboard alone on a journal
    .venv/bin/python -m bench.soak idle                        # the dashboard with no data at all

The tape is SYNTHETIC (:mod:`cryptoarena.data.synthetic`): a block bootstrap of the shipped real
Binance BTCUSDT day (30-minute blocks of real trades, price-rescaled so blocks join),
deterministic by ``--seed``. The worker (its own process, ``run_session`` as ``arena trade``
runs it) replays it at ``--speed`` on the paper venue with every strategy of
``configs/arena.example.toml``, an equity snapshot every 5 s and one forecast a second (an
instant in-process forecaster, so no model time is counted), into the embedded journal;
``arena dashboard`` runs beside it (its own process) over the same journal.

At each checkpoint day (market time) it records: worker and dashboard RSS (``VmRSS``), the
journal's bytes (file + WAL) and bytes per day so far, and every API route's p99 over
``--requests`` requests (one at a time). At the end: events lost = events the worker handed to
the journal (its own count per kind) minus documents in the journal, plus refused ones (the
rejects file); it must be 0. Prints a Markdown table and one JSON line.

``dashboard`` mode: ``arena dashboard`` over an existing journal (e.g. the journal of
``arena trade --speed 400`` over the shipped day): resident memory after every route was asked
for, its peak, and each route's p99.

``idle`` mode: ``arena dashboard`` on an empty journal and an empty MLflow store: resident
memory once it answers ``/api/health`` and again ``--idle-s`` seconds later (what its own
start-up loads, before any data), and the compiled libraries it has mapped (``/proc/PID/maps``;
pure-Python packages such as MLflow show only through theirs, e.g. SQLAlchemy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.dashboard import ROUTES
from bench.loadgen import run_load

CONFIG = Path("configs/arena.example.toml")
RUN = "soak"
DAY_NS = 86_400 * 10**9


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        body: bytes = response.read()
    return body


def _env(root: Path, journal: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    return env | {
        "ARENA_MONGO__EMBEDDED_DIR": str(journal),
        "ARENA_TRADING__KILL_FILE": str(root / "arena.kill"),
        "ARENA_MLFLOW__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "ARENA_DASHBOARD__SITE_DIR": str(Path("docs/site").absolute()),
        "ARENA_HOME": str(root),
    }


def start_dashboard(root: Path, journal: Path, port: int) -> subprocess.Popen[bytes]:
    arena = str(Path(sys.executable).with_name("arena"))
    proc = subprocess.Popen([arena, "dashboard", "--port", str(port)], env=_env(root, journal),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(600):
        try:
            _get(f"http://127.0.0.1:{port}/api/health")
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the dashboard did not answer within 120 s")


def routes(port: int) -> list[str]:
    """bench.dashboard's routes, its strategy named after the run's first AI strategy (the
    example config has no strategy called ``ai``)."""
    board = json.loads(_get(f"http://127.0.0.1:{port}/api/leaderboard"))
    rows = board.get("rows", [])
    ai = next((r["strategy"] for r in rows if r.get("is_ai")), rows[0]["strategy"] if rows else "")
    return [r.replace("strategy=ai", f"strategy={ai}").replace("/strategies/ai", f"/strategies/{ai}")
            for r in ROUTES]  # fmt: skip


def probe(port: int, requests: int) -> dict[str, float]:
    """Each route's p99 (ms) over ``requests`` sequential requests after 5 warm-up ones."""
    base = f"http://127.0.0.1:{port}"
    out = {}
    for route in routes(port):
        res = asyncio.run(run_load(base + route, b"", concurrency=1, requests=requests,
                                   warmup=5, method="GET"))  # fmt: skip
        out[route] = res.p99_ms if not res.errors else float("inf")
    return out


def journal_bytes(journal: Path) -> int:
    return sum(p.stat().st_size for p in journal.glob("cryptoarena.sqlite3*"))


def _machine() -> str:
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, load average {load}")  # fmt: skip


# -- the worker (its own process) ---------------------------------------------------------------
def worker(tape: Path, journal: Path, root: Path, speed: float, out: Path) -> None:
    from cryptoarena.config import Settings
    from cryptoarena.trading.config import load_arena_config
    from cryptoarena.trading.engine.session import (
        ExchangeKind,
        SessionOptions,
        Source,
        run_session_sync,
    )

    from bench.trading import InstantForecasts

    settings = Settings(
        mongo={"embedded_dir": journal},  # type: ignore[arg-type]
        trading={"kill_file": root / "arena.kill"},  # type: ignore[arg-type]
        mlflow={"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"},  # type: ignore[arg-type]
        home=root,
    )
    config = load_arena_config(CONFIG)
    options = SessionOptions(source=Source.REPLAY, exchange=ExchangeKind.PAPER, run_id=RUN,
                             replay_file=tape, speed=speed,
                             forecast_source=InstantForecasts())  # fmt: skip
    result = run_session_sync(settings, config, options)
    out.write_text(json.dumps({"journaled": dict(result.journaled), "ended_by": result.ended_by}))


# -- the soak ---------------------------------------------------------------------------------
def soak(args: argparse.Namespace) -> None:
    from cryptoarena.data.loaders import load_trades
    from cryptoarena.data.samples import TARDIS_DAY, sample_path
    from cryptoarena.data.synthetic import bootstrap_trades, write_tardis_csv
    from cryptoarena.trading.journal import docstore

    root = args.keep or Path(tempfile.mkdtemp(prefix="soak-"))
    journal, tape = root / "journal", root / f"tape-{args.days}d-{args.seed}.csv.gz"
    if not tape.exists():
        started = time.perf_counter()
        real, _ = load_trades(sample_path(TARDIS_DAY))
        synthetic = bootstrap_trades(real, days=args.days, seed=args.seed)
        write_tardis_csv(synthetic, tape)
        print(f"synthetic tape: {len(synthetic):,} trades over {args.days} days "
              f"in {time.perf_counter() - started:.0f} s ({tape})", flush=True)  # fmt: skip
    result_file = root / "worker.json"
    code = (f"from bench.soak import worker; from pathlib import Path; "
            f"worker(Path({str(tape)!r}), Path({str(journal)!r}), Path({str(root)!r}), "
            f"{args.speed}, Path({str(result_file)!r}))")  # fmt: skip
    wlog = (root / "worker.log").open("wb")
    work = subprocess.Popen([sys.executable, "-c", code], env=_env(root, journal),
                            stdout=wlog, stderr=subprocess.STDOUT)  # fmt: skip
    while not (journal / f"cryptoarena{docstore.SUFFIX}").exists() and work.poll() is None:
        time.sleep(0.5)
    dash = start_dashboard(root, journal, args.port)
    rows: list[dict[str, Any]] = []
    checkpoints = sorted(int(c) for c in args.checkpoints.split(",") if int(c) <= args.days)
    first_ns: int | None = None
    samples: list[tuple[float, float, float]] = []  # (market day, worker RSS, dashboard RSS)
    try:
        while work.poll() is None and checkpoints:
            time.sleep(5)
            now = _market_ns(journal)
            if now is None:
                continue
            first_ns = first_ns or now
            day = (now - first_ns) / DAY_NS
            samples.append((day, rss_mb(work.pid)[0], rss_mb(dash.pid)[0]))
            if day >= checkpoints[0]:
                checkpoints.pop(0)
                rows.append(_checkpoint(day, work.pid, dash.pid, journal, args))
                print(json.dumps(rows[-1]), flush=True)
        work.wait()
        rows.append(_checkpoint(_day(journal, first_ns), None, dash.pid, journal, args))
    finally:
        if work.poll() is None:
            work.terminate()
            work.wait(60)
        dash.terminate()
        dash.wait(20)
    lost = events_lost(journal, result_file)
    print(f"\nmachine: {_machine()}; worker speed {args.speed}, seed {args.seed}\n")
    print("| market day | worker RSS MB | dashboard RSS MB (peak) | journal MB | MB/day | "
          "worst route p99 ms |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        worst = max(r["p99_ms"].items(), key=lambda kv: kv[1])
        print(f"| {r['day']:.2f} | {r['worker_rss_mb']:.0f} | {r['dashboard_rss_mb']:.0f} "
              f"({r['dashboard_peak_mb']:.0f}) | {r['journal_mb']:.0f} | {r['mb_per_day']:.0f} | "
              f"{worst[1]:.1f} (`{worst[0]}`) |")  # fmt: skip
    print(f"\nevents lost: {lost}")
    print(json.dumps({"rows": rows, "events_lost": lost, "samples": samples}))


def _market_ns(journal: Path) -> int | None:
    import sqlite3

    path = journal / "cryptoarena.sqlite3"
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute('SELECT max(ts_ns) FROM "equity_latest"').fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return int(row[0]) if row and row[0] is not None else None


def _day(journal: Path, first_ns: int | None) -> float:
    now = _market_ns(journal)
    return 0.0 if now is None or first_ns is None else (now - first_ns) / DAY_NS


def _checkpoint(day: float, worker_pid: int | None, dash_pid: int, journal: Path,
                args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    size = journal_bytes(journal)
    p99 = probe(args.port, args.requests)
    rss, peak = rss_mb(dash_pid)
    return {
        "day": day,
        "worker_rss_mb": rss_mb(worker_pid)[0] if worker_pid else float("nan"),
        "dashboard_rss_mb": rss,
        "dashboard_peak_mb": peak,
        "journal_mb": size / 1e6,
        "mb_per_day": size / 1e6 / max(day, 1e-9),
        "p99_ms": p99,
        "wall": time.strftime("%H:%M:%S", time.gmtime()),
    }


def events_lost(journal: Path, result_file: Path) -> int | None:
    """Events the worker handed to the journal minus documents there, plus refused ones."""
    if not result_file.exists():
        return None
    from cryptoarena.config import Settings
    from cryptoarena.trading.journal import Journal

    handed = json.loads(result_file.read_text())["journaled"]
    settings = Settings(mongo={"embedded_dir": journal})  # type: ignore[arg-type]
    lost = 0
    with Journal.open(settings, run_id="soak-check", readonly=True) as reader:
        for kind, n in handed.items():
            lost += max(0, int(n) - reader.count(kind, {"run_id": RUN}))
        rejects = reader.rejects_path
    if rejects.exists():
        lost += len(rejects.read_text().splitlines())
    return lost


def dashboard_only(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="soak-dash-"))
    size = journal_bytes(args.journal)
    started = time.perf_counter()
    dash = start_dashboard(root, args.journal.absolute(), args.port)
    try:
        ready = time.perf_counter() - started
        for route in routes(args.port):  # the first answer of each (cold)
            _get(f"http://127.0.0.1:{args.port}{route}")
        p99 = probe(args.port, args.requests)
        rss, peak = rss_mb(dash.pid)
    finally:
        dash.terminate()
        dash.wait(20)
    print(f"machine: {_machine()}")
    print(f"journal {size / 1e6:.0f} MB; dashboard answered health after {ready:.1f} s; "
          f"RSS {rss:.0f} MB (peak {peak:.0f} MB)")  # fmt: skip
    print("| route | p99 ms |\n|---|---:|")
    for route, ms in p99.items():
        print(f"| `{route}` | {ms:.1f} |")
    print(json.dumps({"rss_mb": rss, "peak_mb": peak, "p99_ms": p99, "journal_mb": size / 1e6}))


def mapped_packages(pid: int) -> list[str]:
    """The site-packages whose compiled modules a process has mapped."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        _, sep, rest = line.partition("site-packages/")
        if sep and "/" in rest:
            found.add(rest.split("/")[0])
    return sorted(found)


def dashboard_idle(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="soak-idle-"))
    started = time.perf_counter()
    dash = start_dashboard(root, root / "journal", args.port)
    try:
        ready = time.perf_counter() - started
        at_health, _ = rss_mb(dash.pid)
        time.sleep(args.idle_s)  # background work started with the app (none should be heavy)
        later, peak = rss_mb(dash.pid)
        libs = mapped_packages(dash.pid)
    finally:
        dash.terminate()
        dash.wait(20)
    print(f"machine: {_machine()}")
    print(f"dashboard answered health after {ready:.1f} s; RSS {at_health:.0f} MB then, "
          f"{later:.0f} MB {args.idle_s:g} s later (peak {peak:.0f} MB)")  # fmt: skip
    print("compiled libraries mapped: " + ", ".join(libs))
    print(json.dumps({"rss_health_mb": at_health, "rss_idle_mb": later, "peak_mb": peak,
                      "libraries": libs}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("mode", nargs="?", default="soak", choices=("soak", "dashboard", "idle"))
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--speed", type=float, default=2000.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--checkpoints", default="1,10,30")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--port", type=int, default=18_097)
    ap.add_argument("--keep", type=Path, default=None, help="work (and keep) everything here")
    ap.add_argument("--journal", type=Path, help="dashboard mode: the journal folder")
    ap.add_argument("--idle-s", type=float, default=20.0, help="idle mode: seconds to wait")
    args = ap.parse_args()
    if args.mode == "dashboard":
        if args.journal is None:
            ap.error("dashboard mode needs --journal")
        dashboard_only(args)
    elif args.mode == "idle":
        dashboard_idle(args)
    else:
        soak(args)


if __name__ == "__main__":
    main()
