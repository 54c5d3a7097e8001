"""The sweep as a Prefect flow: one task per grid point, run by prefect-dask's task runner.

Thin on purpose: the points' backtests, the MLflow runs and the table are package functions.
The flow lives in the package (``flows/sweep.py`` re-exports it) because ``arena sweep`` must
find it in an installed package, and Dask workers import a task's function by reference: a
function in the repository's ``flows/`` folder would not import on a cluster's workers.

Only the MLflow steps retry (a tracking server is a network service); a backtest that fails is
recorded as a failed point (failed nested run, ``error`` in the table), and the others go on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptoarena.config import Settings, get_settings
from cryptoarena.trading.sweeps import tracking
from cryptoarena.trading.sweeps.backtest import PointJob, PointResult, failed, run_point
from cryptoarena.trading.sweeps.plan import Cluster, SweepPlan, make_plan, task_runner
from cryptoarena.trading.sweeps.table import (
    SweepSummary,
    render_csv,
    render_json,
    render_markdown,
    summarise,
)
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed

logger = logging.getLogger(__name__)

# Tasks' inputs are whole configs and results: nothing worth caching.
backtest_point = task(name="backtest-point", cache_policy=NO_CACHE, task_run_name="{job.run_id}")(
    run_point
)
mlflow_task = task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
start_sweep_run = mlflow_task(tracking.start_sweep)
log_point_run = mlflow_task(tracking.log_point)
finish_sweep_run = mlflow_task(tracking.finish_sweep)


def write_table(directory: Path, summary: SweepSummary) -> Path:
    """``sweep.md``, ``sweep.csv`` and ``sweep.json`` in the sweep's folder; returns the .md."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sweep.csv").write_text(render_csv(summary))
    (directory / "sweep.json").write_text(render_json(summary))
    md = directory / "sweep.md"
    md.write_text(render_markdown(summary))
    return md


@flow(name="sweep", validate_parameters=False)
def sweep_flow(plan: SweepPlan, tracking_uri: str) -> SweepSummary:
    log = get_run_logger()
    # Submitted first: the workers start (and import) while the MLflow parent run is created.
    futures: dict[PrefectFuture[PointResult], PointJob] = {
        backtest_point.submit(job): job for job in plan.jobs
    }
    experiment, parent = start_sweep_run(
        tracking_uri, plan.spec.experiment, plan.sweep_id, plan.mlflow_params()
    )
    try:
        results: list[PointResult] = []
        for future in as_completed(list(futures)):
            job = futures[future]
            outcome = future.result(raise_on_failure=False)
            result = outcome if isinstance(outcome, PointResult) else failed(job, repr(outcome))
            log_point_run(tracking_uri, experiment, parent, result)
            results.append(result)
            log.info("%s done (%d/%d)", job.point.point_id, len(results), len(plan.jobs))
        results.sort(key=lambda r: r.point.point_id)
        summary = summarise(plan.sweep_id, plan.spec.kind, results, len(plan.skipped))
        write_table(plan.directory, summary)
        finish_sweep_run(tracking_uri, parent, summary)
    except BaseException:
        tracking.abort_sweep(tracking_uri, parent)
        raise
    log.info(summary.sentence)
    return summary


@contextmanager
def shared_api(startup_timeout_s: int = 120) -> Iterator[str]:
    """One Prefect API for the flow and every worker process. Dask workers report their task
    runs to ``PREFECT_API_URL``; without one configured, each worker process would start an
    ephemeral server of its own (and time out). So: start the ephemeral server here once when
    none is configured, and hand its URL to the workers through the environment (local
    workers are spawned inside the flow and inherit it). Workers of a remote cluster need a
    Prefect server they can reach: set ``PREFECT_API_URL`` for them and for this process."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    server = None
    if not configured:
        server = SubprocessASGIServer()
        server.start(timeout=startup_timeout_s)
    url = str(configured or server.api_url)  # type: ignore[union-attr]
    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before
        if server is not None:
            _drain_prefect_workers()
            server.stop()


def _drain_prefect_workers(timeout_s: float = 5.0) -> None:
    """Send the queued log and event batches while the temporary API still answers: left for
    interpreter exit, they retried against a stopped server for over a minute and ended in
    "--- Error logging to API --- All connection attempts failed"."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout_s)
    EventsWorker.drain_all(timeout=timeout_s)


def run_sweep(plan: SweepPlan, cluster: Cluster, tracking_uri: str | None = None) -> SweepSummary:
    """Run ``plan`` on ``cluster`` (MLflow at ``tracking_uri``, default: settings)."""
    uri = tracking_uri or get_settings().mlflow.tracking_uri
    runner = task_runner(cluster, len(plan.jobs))
    configured = sweep_flow.with_options(task_runner=runner, flow_run_name=plan.sweep_id)
    with shared_api():
        return configured(plan, uri)


def plan_sweep(settings: Settings, spec_data: dict[str, object], out_dir: Path) -> SweepPlan:
    from cryptoarena.trading.sweeps.grid import parse_spec

    return make_plan(settings, parse_spec(spec_data), out_dir)
