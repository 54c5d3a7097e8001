"""From a validated grid to the jobs to run, where they run (Dask), and where results go.

Every point gets its own folder ``<out>/<sweep id>/points/<point id>/`` (its journal and
home). Paths are made absolute here, in the flow's process, so workers started elsewhere
(a Dask cluster) get no relative path to resolve against a different working directory.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptoarena.config import Settings
from cryptoarena.trading.sweeps.backtest import PointJob
from cryptoarena.trading.sweeps.grid import SweepError, SweepSpec, base_arena, point_config, points

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPlan:
    sweep_id: str
    spec: SweepSpec
    directory: Path
    jobs: list[PointJob]
    skipped: list[str]

    def mlflow_params(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "kind": spec.kind,
            "points": len(self.jobs),
            "skipped": len(self.skipped),
            "params": spec.params,
            **{f"grid.{k}": v for k, v in spec.grid.items()},
            "spans": [s.label() for s in spec.span],
            "replay_file": str(self.jobs[0].replay_file) if self.jobs else "",
            "arena": str(spec.arena) if spec.arena else "built-in defaults",
            "out_dir": str(self.directory),
        }


def replay_file(settings: Settings, spec: SweepSpec) -> Path:
    from cryptoarena.data.samples import TARDIS_DAY, sample_path

    path = Path(spec.replay_file or sample_path(TARDIS_DAY, settings.data.sample_dir))
    if not path.is_file():
        raise SweepError(f"replay file not found: {path}")
    return path.resolve()


def check_spans(path: Path, spec: SweepSpec) -> None:
    """Every span must start inside the replay file (else its backtest has nothing to run)."""
    from cryptoarena.data.loaders import load_trades

    trades, _ = load_trades(path)
    if trades.empty:
        raise SweepError(f"no trades in {path}")
    length_min = (int(trades["ts"].iloc[-1]) - int(trades["ts"].iloc[0])) / 60e9
    for i, span in enumerate(spec.span):
        if span.start_minute >= length_min:
            raise SweepError(
                f"span {i} starts at minute {span.start_minute:g}, after the replay ends "
                f"({length_min:.1f} min of trades in {path.name})"
            )


def make_plan(
    settings: Settings, spec: SweepSpec, out_dir: Path, *, check: bool = True
) -> SweepPlan:
    """Validate everything that can be validated before any backtest starts."""
    grid, skipped = points(spec)
    base = base_arena(spec)
    path = replay_file(settings, spec)
    if check:
        check_spans(path, spec)
    sweep_id = f"{spec.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    directory = (Path(out_dir) / sweep_id).resolve()
    jobs = [
        PointJob(
            point=p,
            config=point_config(base, spec.kind, p.params, p.point_id),
            replay_file=path,
            directory=directory / "points" / p.point_id,
            run_id=f"{sweep_id}-{p.point_id}",
        )
        for p in grid
    ]
    return SweepPlan(sweep_id, spec, directory, jobs, skipped)


@dataclass(frozen=True)
class Cluster:
    """Where the points run: a Dask scheduler's address, or a local cluster of ``workers``
    processes (one thread each: a backtest is CPU-bound Python, threads would share one GIL)."""

    address: str | None = None
    workers: int | None = None
    processes: bool = True

    def describe(self) -> str:
        if self.address:
            return f"Dask cluster at {self.address}"
        kind = "processes" if self.processes else "threads"
        return f"local Dask cluster, {self.local_workers()} worker {kind}"

    def local_workers(self, points: int | None = None) -> int:
        n = self.workers or os.cpu_count() or 1
        return max(1, min(n, points)) if points else max(1, n)


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, when a ``tcp://host:port`` Dask scheduler does not answer
    (Dask itself would retry for 30 s and fail inside the flow run)."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls") or parsed.hostname is None:
        return  # other transports (inproc, ucx): left to Dask
    port = parsed.port or 8786
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise SweepError(f"no Dask scheduler answers at {address}: {exc}") from None


def task_runner(cluster: Cluster, points: int | None = None) -> Any:
    """prefect-dask's task runner for ``cluster``."""
    from prefect_dask import DaskTaskRunner

    if cluster.address:
        return DaskTaskRunner(address=cluster.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": cluster.local_workers(points),
            "threads_per_worker": 1,
            "processes": cluster.processes,
            "dashboard_address": ":0",  # any free port: sweeps side by side never collide
        },
    )
