"""Sweeps: wall time of a 2×2 and a 4×4 grid through ``arena sweep``'s flow, and the speed-up
over running the same points one after the other.

    .venv/bin/python -m bench.sweep [--minutes 30] [--workers 2] [--grids 2,4]

Each grid is SMA crossover fast × slow (n × n points) on 5-second bars over the first
``--minutes`` of the shipped real day, every point a full backtest (paper fills on the tape,
risk, its own embedded journal) run by prefect-dask's task runner on a local Dask cluster of
``--workers`` processes, logged to MLflow (SQLite in a temporary directory). Reported: wall time
from submitting the flow to its table (includes the local cluster's start, its workers'
imports and the MLflow runs; the one temporary Prefect API is started before the clock
starts, as a configured server would be), against the same points run one after the other in
this process with no Prefect, Dask or MLflow (``run_point``), and their ratio.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

from cryptoarena.config import get_settings
from cryptoarena.trading.sweeps.backtest import run_point
from cryptoarena.trading.sweeps.flow import plan_sweep, run_sweep, shared_api
from cryptoarena.trading.sweeps.plan import Cluster

FAST = [3, 5, 8, 13, 21, 34]
SLOW = [40, 60, 90, 120, 180, 240]


def one(n: int, minutes: float, workers: int, root: Path) -> dict[str, float]:
    data = {
        "name": f"bench{n}x{n}",
        "kind": "sma_cross",
        "params": {"bar_size": "5s"},
        "grid": {"fast": FAST[:n], "slow": SLOW[:n]},
        "span": [{"start_minute": 0, "minutes": minutes}],
    }
    # The baseline: the same points, one after the other in this process, no Prefect or Dask.
    serial_plan = plan_sweep(get_settings(), data, root / "serial")
    started = time.perf_counter()
    for job in serial_plan.jobs:
        run_point(job)
    serial = time.perf_counter() - started
    plan = plan_sweep(get_settings(), data, root / "out")
    started = time.perf_counter()
    summary = run_sweep(plan, Cluster(workers=workers), f"sqlite:///{root / 'mlflow.db'}")
    wall = time.perf_counter() - started
    assert summary.failed == 0, summary.rows
    in_workers = sum(float(row["wall_s"] or 0.0) for row in summary.rows)
    return {"points": n * n, "wall_s": wall, "serial_s": serial, "speedup": serial / wall,
            "in_workers_s": in_workers}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grids", default="2,4", help="grid sides, e.g. 2,4 → 2×2 and 4×4")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load = os.getloadavg()[0]
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp, shared_api():
        for n in (int(x) for x in args.grids.split(",")):
            r = one(n, args.minutes, args.workers, Path(tmp) / f"g{n}")
            print(
                f"{n}×{n} grid ({r['points']:.0f} points × {args.minutes:g} min, "
                f"{args.workers} workers): sweep flow {r['wall_s']:.1f} s; the same points one "
                f"after the other in one process {r['serial_s']:.1f} s; ratio {r['speedup']:.2f}×; "
                f"sum of the points' own times inside the workers {r['in_workers_s']:.1f} s"
            )


if __name__ == "__main__":
    main()
