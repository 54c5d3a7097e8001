"""``arena report`` on a full day, and the verdict's bootstrap memory (issues #10.5, #15.2).

    .venv/bin/python -m bench.report [--hours 24] [--strategies 10] [--journal DIR]
    .venv/bin/python -m bench.report --journal DIR --run-id RUN   # a real run already journaled
    .venv/bin/python -m bench.report --bootstrap [--days 1 7 30]
    .venv/bin/python -m bench.report --startup [--registry sqlite:///DIR/mlflow.db] [--repeat 3]

Report: journals a synthetic run the way the worker does (``started``, one equity snapshot per
strategy every 5 s, one prediction per second with its realised price, a halt, ``stopped``)
into litemongo through the real ``Journal`` (kept in ``--journal DIR``, default /tmp/cryptoarena-bench-report, and reused by later runs), then times,
in a fresh process each (the reader's first query pays litemongo's index build, as a user's
``arena report`` would): building the ``RunReport`` (table), JSON, and Markdown with plots,
plus the ``arena report`` command end to end. Prints wall time and peak RSS. With ``--run-id``
it times the report of a run already in ``--journal DIR`` (e.g. a full-day ``arena backtest``
of configs/arena.example.toml) instead of writing a synthetic one.

Bootstrap: the verdict on 4 synthetic equity curves of 5-second snapshots over N days, 2,000
resamples, in a fresh process per case (peak RSS = ``ru_maxrss`` of that child): the current
moving-block bootstrap ("current": numpy, the draws of ``arch``'s, which it used until issue
#19), and the old in-memory index array (reimplemented below as it was) for the sizes the
machine can hold.

Start-up (issue #21 item 6): fresh ``arena`` processes on the example config, in a temporary
home and journal: each command's ``--help``; ``arena backtest --minutes 5`` (every strategy,
the AI arm with the ``@champion`` of ``--registry`` loaded in-process, or standing aside
without one) timed to its first ``progress:`` line and to its end; then ``arena report`` of
that run. One untimed warm-up of each (MLflow creates its database on a first visit), then the
median of ``--repeat`` runs, with the CPU time of the child (user + sys). Run it with another
checkout's interpreter (``/work/main/.venv/bin/python -m bench.report --startup`` from this
folder) to measure that checkout's ``arena``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NS = 1_000_000_000
T0 = 1_582_329_600 * NS  # 2020-02-22 00:00 UTC
FAMILIES = ["ai", "ai"] + ["classical"] * 6 + ["reference"] * 2


def _settings(root: Path):  # type: ignore[no-untyped-def]
    from cryptoarena.config import MongoSettings, Settings

    return Settings(mongo=MongoSettings(embedded_dir=root), home=root)


def write_journal(root: Path, hours: float, strategies: int) -> str:
    from cryptoarena.clock import SimClock
    from cryptoarena.trading.journal import Journal, JournalConfig, WriterConfig

    run_id = "bench-day"
    names = [f"s{i}_{FAMILIES[i % len(FAMILIES)]}" for i in range(strategies)]
    fams = {n: FAMILIES[i % len(FAMILIES)] for i, n in enumerate(names)}
    clock = SimClock(T0)
    rng = np.random.default_rng(0)
    snapshots = int(hours * 3600 / 5)
    config = JournalConfig(writer=WriterConfig(queue_size=50_000))
    started = time.perf_counter()
    with Journal.open(_settings(root), run_id=run_id, clock=clock, config=config) as j:
        j.record("runs", {"event": "started", "arena": {"capital": 10_000.0},
                          "strategies": [{"name": n, "kind": n, "family": f} for n, f in fams.items()]})  # fmt: skip
        equity = dict.fromkeys(names, 10_000.0)
        for i in range(snapshots):
            ts = T0 + i * 5 * NS
            clock.advance_to(ts)
            for n in names:
                equity[n] *= 1 + rng.normal(0, 1e-4)
                j.record("equity", {"strategy": n, "ts_ns": ts, "equity": equity[n], "qty": 0.1,
                                    "mark": 9700.0, "cash": 9000.0, "avg_price": 9700.0,
                                    "realised": 1.0, "unrealised": 0.5, "fees": 2.0, "fills": i // 50,
                                    "round_trips": i // 100, "wins": i // 200, "exposure": 0.1,
                                    "exact": {"capital": "10000", "gross_profit": "5", "gross_loss": "3"}})  # fmt: skip
            for k in range(5):  # one forecast per second
                base = 9700.0 + rng.normal()
                j.record("predictions", {"ts_ns": ts + k * NS, "base_price": base, "horizon_s": 15,
                                         "log_returns": [1e-5] * 15, "predicted_price": base * 1.0001,
                                         "realised_price": base * (1 + rng.normal(0, 2e-4)),
                                         "model_version": "1", "symbol": "BTCUSDT"})  # fmt: skip
            if i == snapshots // 2:
                j.record(
                    "risk_events", {"type": "halt", "strategy": names[2], "reason": "daily loss"}
                )
        j.record("runs", {"event": "stopped", "stopped_by": "feed ended", "complete": True,
                          "ended_by": "feed ended"})  # fmt: skip
        assert j.sync(3600)
    print(f"journal written: {snapshots * strategies:,} equity snapshots, {snapshots * 5:,} "
          f"predictions in {time.perf_counter() - started:.0f} s")  # fmt: skip
    return run_id


_CHILD_REPORT = """
import resource, sys, time
from pathlib import Path
t = time.perf_counter()
from bench.report import _settings
from cryptoarena.trading.results.report import ReportFormat, print_report
import io, contextlib
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    print_report(_settings(Path(sys.argv[1])), sys.argv[2], ReportFormat(sys.argv[3]),
                 Path(sys.argv[1]) / "reports")
u = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss)
"""


def time_report(root: Path, run_id: str) -> None:
    rows = []
    for fmt in ("table", "json", "markdown"):
        out = subprocess.run([sys.executable, "-c", _CHILD_REPORT, str(root), run_id, fmt],
                             capture_output=True, text=True, check=True)  # fmt: skip
        wall, cpu, rss = out.stdout.split()[-3:]
        rows.append((f"`--format {fmt}` (imports included)", float(wall), float(cpu), int(rss)))
    env = {**os.environ, "ARENA_MONGO__EMBEDDED_DIR": str(root), "ARENA_HOME": str(root)}
    arena = str(Path(sys.executable).with_name("arena"))
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([arena, "report", "--run-id", run_id], env=env, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    rows.append(("`arena report` (process start included)", time.perf_counter() - t, cpu, 0))
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| what | wall | CPU (user+sys) | peak RSS |")
    print("| --- | ---: | ---: | ---: |")
    for name, wall, cpu_s, rss in rows:
        mem = f"{rss / 1024:.0f} MiB" if rss else "—"
        print(f"| {name} | {wall:.2f} s | {cpu_s:.2f} s | {mem} |")


# -- start-up --------------------------------------------------------------------------------


def _timed(
    argv: list[str], env: dict[str, str], marker: str | None = None
) -> tuple[float, float, float]:
    """(wall to ``marker``'s first line or NaN, wall to the end, CPU) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    first = math.nan
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, cwd=Path(__file__).resolve().parents[1]) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            if marker and math.isnan(first) and marker in line:
                first = time.perf_counter() - t
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode})")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return first, wall, cpu


def time_startup(registry: str | None, repeat: int) -> None:
    import statistics
    import tempfile

    arena = str(Path(sys.executable).with_name("arena"))
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
        env |= {
            "ARENA_HOME": tmp,
            "ARENA_MONGO__EMBEDDED_DIR": f"{tmp}/journal",
            "ARENA_TRADING__KILL_FILE": f"{tmp}/arena.kill",
            "ARENA_SERVING__URL": "http://127.0.0.1:9",  # no server: the champion in-process
            "ARENA_MLFLOW__TRACKING_URI": registry or f"sqlite:///{tmp}/mlflow.db",
            "ARENA_LOG_FILE": f"{tmp}/arena.log",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        config = str(root / "configs" / "arena.example.toml")
        cases: list[tuple[str, list[str], str | None]] = [
            (f"`arena {c} --help`".replace("  ", " "), [*c.split(), "--help"], None)
            for c in ("", "backtest", "report", "dashboard")
        ]
        backtest = ["backtest", "--config", config, "--minutes", "5", "--allow-in-sample"]
        cases.append(("`arena backtest --minutes 5` (example config)", backtest, "progress:"))
        cases.append(("`arena report` of that run", ["report", "--run-id", "startup"], None))
        print(f"load average {os.getloadavg()[0]:.1f}; registry: {registry or 'empty'}")
        print("| command | to the first progress line | wall | CPU (user+sys) |")
        print("| --- | ---: | ---: | ---: |")
        for name, args, marker in cases:
            if args[0] == "backtest":
                args = [*args, "--run-id", "startup"]
            runs = []
            for i in range(repeat + 1):
                if args[0] == "backtest":  # each timed run a fresh run, not a resume
                    args = [*args[:-1], f"startup{i}"] if i else args
                runs.append(_timed([arena, *args], env, marker))
            first, wall, cpu = (statistics.median(r[k] for r in runs[1:]) for k in range(3))
            to_first = "—" if math.isnan(first) else f"{first:.2f} s"
            print(f"| {name} | {to_first} | {wall:.2f} s | {cpu:.2f} s |")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


# -- bootstrap memory ---------------------------------------------------------------------------


def old_bootstrap(ai: np.ndarray, classical: list[np.ndarray], resamples: int = 2000,
                  block: int = 12, seed: int = 7) -> tuple[float, float]:  # fmt: skip
    """The bootstrap as it was before issue #15 (a resamples × n index array)."""
    ai_r = np.diff(ai) / ai[:-1]
    n = len(ai_r)
    cl = np.mean([np.diff(c) / c[:-1] for c in classical], axis=0)
    diff = (ai_r - cl) * 1e4
    rng = np.random.default_rng(seed)
    blocks = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(resamples, blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(resamples, -1)[:, :n]
    means = diff[idx].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


_CHILD_BOOT = """
import resource, sys, time
import numpy as np
from bench.report import old_bootstrap
from cryptoarena.trading.results.verdict import compare_ai_vs_classical
days, which = float(sys.argv[1]), sys.argv[2]
n = int(days * 86400 / 5)
rng = np.random.default_rng(0)
curves = [1e4 * np.cumprod(1 + rng.normal(0, 1e-4, n + 1)) for _ in range(4)]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # imports and inputs
t = time.perf_counter()
if which == "old":
    lo, hi = old_bootstrap(curves[0], curves[1:])
    block = 12
else:
    c = compare_ai_vs_classical(curves[0], curves[1:], period_s=5.0)
    lo, hi, block = c.ci_low_bp_day, c.ci_high_bp_day, c.block
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, base, block)
"""


def time_bootstrap(days: list[float], old_max_days: float) -> None:
    print("| days | periods | bootstrap | block | wall | peak RSS | of which the bootstrap |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for d in days:
        for which in ("old", "current"):
            if which == "old" and d > old_max_days:
                continue
            out = subprocess.run([sys.executable, "-c", _CHILD_BOOT, str(d), which],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            wall, rss, base, block = out.stdout.split()[-4:]
            print(f"| {d:g} | {int(d * 86400 / 5):,} | {which} | {block} | {float(wall):.1f} s | "
                  f"{int(rss) / 1024:.0f} MiB | {(int(rss) - int(base)) / 1024:.0f} MiB |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--strategies", type=int, default=10)
    parser.add_argument("--journal", type=Path, default=Path("/tmp/cryptoarena-bench-report"))
    parser.add_argument("--bootstrap", action="store_true")
    parser.add_argument("--days", type=float, nargs="*", default=[1, 7, 30])
    parser.add_argument("--old-max-days", type=float, default=2.0)
    parser.add_argument("--run-id", help="time this run of --journal instead of a synthetic one")
    parser.add_argument("--startup", action="store_true", help="time the commands' start-up")
    parser.add_argument("--registry", help="--startup: MLflow tracking URI holding @champion")
    parser.add_argument("--repeat", type=int, default=3, help="--startup: timed runs per command")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.bootstrap:
        time_bootstrap(args.days, args.old_max_days)
        return
    if args.startup:
        time_startup(args.registry, args.repeat)
        return
    marker = args.journal / "bench-run.json"
    if args.run_id:
        run_id = args.run_id
    elif marker.exists():
        run_id = json.loads(marker.read_text())["run_id"]
    else:
        run_id = write_journal(args.journal, args.hours, args.strategies)
        marker.write_text(json.dumps({"run_id": run_id}))
    time_report(args.journal, run_id)


if __name__ == "__main__":
    main()
