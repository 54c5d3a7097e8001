"""``arena report`` on a full day, and the verdict's bootstrap memory (issues #10.5, #15.2).

    .venv/bin/python -m bench.report [--hours 24] [--strategies 10] [--journal DIR]
    .venv/bin/python -m bench.report --journal DIR --run-id RUN   # a real run already journaled
    .venv/bin/python -m bench.report --bootstrap [--days 1 7 30]
    .venv/bin/python -m bench.report --startup [--registry sqlite:///DIR/mlflow.db] [--repeat 3]
        [--arenas /work/main/.venv/bin/arena .venv/bin/arena]
    .venv/bin/python -m bench.report --champion-phases --registry sqlite:///DIR/mlflow.db

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

Start-up (issue #21 item 6): fresh ``arena`` processes in a temporary home and journal, no
model server: each command's ``--help``; ``arena backtest --minutes 5 --allow-in-sample`` of the
example config (every strategy, both AI arms) with no registry database, with a registry MLflow
made that holds no ``@champion``, and with the ``@champion`` of ``--registry`` loaded
in-process; the example config without its AI arms; ``arena report`` of a run. Each backtest is
timed to its first ``progress:`` line (wall, and the child's CPU read from /proc then) and to
its end; one untimed warm-up of each, then the median of ``--repeat`` runs. ``--arenas`` runs
several checkouts' ``arena`` side by side, case by case under the same load
(``--arenas /work/main/.venv/bin/arena .venv/bin/arena``). ``--champion-phases``: where the
CPU of loading ``--registry``'s ``@champion`` in-process goes, phase by phase, in one process.
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


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(argv: list[str], env: dict[str, str], marker: str | None = None) -> tuple[float, ...]:
    """(wall and CPU to ``marker``'s first line or NaN, wall and CPU to the end) of one child
    process (the CPU at the marker read from /proc as the line arrives)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    first = first_cpu = math.nan
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, cwd=Path(__file__).resolve().parents[1]) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            if marker and math.isnan(first) and marker in line:
                first, first_cpu = time.perf_counter() - t, _cpu_of(proc.pid)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode})")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return first, first_cpu, wall, cpu


def _without_ai_arms(config: Path, out: Path) -> Path:
    """``config`` without its ``ai_forecast`` strategies (text blocks, comments kept)."""
    head, *blocks = config.read_text().split("\n[[strategy]]")
    kept = [b for b in blocks if 'kind = "ai_forecast"' not in b]
    out.write_text("\n[[strategy]]".join([head, *kept]))
    return out


def _empty_registry(path: Path) -> str:
    """A registry database made by MLflow (its schema), holding no model."""
    from mlflow.tracking import MlflowClient

    path.parent.mkdir(parents=True)
    uri = f"sqlite:///{path}"
    MlflowClient(uri, uri).search_registered_models()
    return uri


def time_startup(registry: str | None, repeat: int, arenas: list[str]) -> None:
    """Each case run by every ``arenas`` executable in turn (side by side under the same load),
    one untimed warm-up each, then the median of ``repeat`` runs."""
    import statistics
    import tempfile

    root = Path(__file__).resolve().parents[1]
    example = root / "configs" / "arena.example.toml"
    with tempfile.TemporaryDirectory() as tmp:
        base = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
        base |= {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        no_ai = str(_without_ai_arms(example, Path(tmp) / "no-ai.toml"))
        registries = {
            "none": "",  # no database: one path per arena (an arena may create it)
            "empty": _empty_registry(Path(tmp) / "empty" / "mlflow.db"),
            "champion": registry or "",
        }

        def env(arena: int, reg: str) -> dict[str, str]:
            home = f"{tmp}/home{arena}"
            return base | {
                "ARENA_HOME": home,
                "ARENA_MONGO__EMBEDDED_DIR": f"{home}/journal",
                "ARENA_TRADING__KILL_FILE": f"{home}/arena.kill",
                "ARENA_SERVING__URL": "http://127.0.0.1:9",  # no server: the champion in-process
                "ARENA_MLFLOW__TRACKING_URI": registries[reg] or f"sqlite:///{home}/none/mlflow.db",
                "ARENA_LOG_FILE": f"{home}/arena.log",
            }

        backtest = ["backtest", "--minutes", "5", "--allow-in-sample"]
        cases: list[tuple[str, list[str], str | None, str]] = [
            (f"`arena {c} --help`".replace("  ", " "), [*c.split(), "--help"], None, "none")
            for c in ("", "backtest", "report")
        ]
        cases += [
            ("`arena backtest`, example config, no registry database",
             [*backtest, "--config", str(example), "--run-id", "none"], "progress:", "none"),
            ("`arena backtest`, example config, a registry without @champion",
             [*backtest, "--config", str(example), "--run-id", "empty"], "progress:", "empty"),
            ("`arena backtest`, the example config without its AI arms",
             [*backtest, "--config", no_ai, "--run-id", "no_ai"], "progress:", "none"),
            ("`arena report` of the example config's run", ["report", "--run-id", "none"], None,
             "none"),
        ]  # fmt: skip
        if registry:
            cases.append(("`arena backtest`, example config, @champion in-process",
                          [*backtest, "--config", str(example), "--run-id", "champion"],
                          "progress:", "champion"))  # fmt: skip
        print(
            f"load average {Path('/proc/loadavg').read_text().strip()}; arenas: {', '.join(arenas)}"
        )
        print("| command | arena | first progress line: wall / CPU | end: wall / CPU |")
        print("| --- | --- | ---: | ---: |")
        for name, args, marker, reg in cases:
            runs: list[list[tuple[float, ...]]] = [[] for _ in arenas]
            for i in range(repeat + 1):
                for k, arena in enumerate(arenas):
                    argv = [arena, *args]
                    if args[0] == "backtest" and "--run-id" in args and i:  # a fresh run each
                        argv[-1] = f"{args[-1]}{i}"
                    runs[k].append(_timed(argv, env(k, reg), marker))
            for arena, got in zip(arenas, runs, strict=True):
                med = [statistics.median(r[j] for r in got[1:]) for j in range(4)]
                first = "—" if math.isnan(med[0]) else f"{med[0]:.2f} s / {med[1]:.2f} s"
                print(f"| {name} | {arena} | {first} | {med[2]:.2f} s / {med[3]:.2f} s |")
        print(f"load average {Path('/proc/loadavg').read_text().strip()} at the end")


_CHILD_PHASES = """
import resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
rows, t, w = [], cpu(), time.perf_counter()
def mark(name):
    global t, w
    rows.append((name, cpu() - t, time.perf_counter() - w))
    t, w = cpu(), time.perf_counter()
from cryptoarena.config import get_settings
from cryptoarena.trading.config import load_arena_config
settings = get_settings()
load_arena_config(sys.argv[1])
mark("settings, the config, the strategies (pandas)")
import mlflow
mark("import mlflow (its __init__: FastAPI, genai, entities)")
import mlflow.store.tracking.sqlalchemy_store
mark("MLflow's SQLAlchemy store modules (alembic)")
import torch
mark("import torch")
from cryptoarena.model.registry import _mlflow_pytorch
_mlflow_pytorch()
mark("import mlflow.pytorch (Lightning kept out)")
import torch.export.pt2_archive._package
mark("torch.export's loader modules (sympy, networkx, functorch)")
from cryptoarena.trading.forecasts.local import load_champion
assert load_champion(settings).source is not None, "no @champion in ARENA_MLFLOW__TRACKING_URI"
mark("lookup, download, torch.export.load of the champion")
from cryptoarena.trading.forecasts.choice import replay_span
replay_span(settings)
mark("the day's trades (the CLI's replay span)")
for name, c, wall in rows:
    print(f"| {name} | {c:.2f} s | {wall:.2f} s |")
print(f"| total | {sum(r[1] for r in rows):.2f} s | {sum(r[2] for r in rows):.2f} s |")
"""


def time_champion_phases(registry: str) -> None:
    """CPU and wall of each phase of loading ``@champion`` in a fresh process, in the order
    ``arena backtest`` meets them (each phase's imports are what it adds to the ones before)."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    env |= {"ARENA_MLFLOW__TRACKING_URI": registry, "OMP_NUM_THREADS": "1"}
    print(f"load average {Path('/proc/loadavg').read_text().strip()}")
    print("| phase | CPU | wall |\n| --- | ---: | ---: |", flush=True)  # before the child's rows
    config = str(root / "configs" / "arena.example.toml")
    subprocess.run([sys.executable, "-c", _CHILD_PHASES, config], env=env, cwd=root, check=True)
    print(f"load average {Path('/proc/loadavg').read_text().strip()} at the end")


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
    parser.add_argument(
        "--champion-phases", action="store_true", help="--registry's @champion load, by phase"
    )
    parser.add_argument(
        "--arenas", nargs="+", help="--startup: arena executables, side by side (default: ours)"
    )
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.bootstrap:
        time_bootstrap(args.days, args.old_max_days)
        return
    if args.champion_phases:
        time_champion_phases(args.registry or "")
        return
    if args.startup:
        own = str(Path(sys.executable).with_name("arena"))
        time_startup(args.registry, args.repeat, args.arenas or [own])
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
