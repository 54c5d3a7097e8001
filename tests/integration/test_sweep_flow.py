"""``arena sweep`` for real: the Prefect flow (the session's one shared test API) on prefect-dask's
task runner pointed at a 2-worker Dask ``LocalCluster``, real backtests of a 2×2 grid on five
minutes of the shipped day, and a real MLflow store on SQLite in a temporary directory."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cryptoarena.config import get_settings
from cryptoarena.trading.results.report import load
from cryptoarena.trading.results.stats import period_returns
from cryptoarena.trading.sweeps.backtest import point_settings
from cryptoarena.trading.sweeps.flow import plan_sweep, run_sweep
from cryptoarena.trading.sweeps.plan import Cluster
from mlflow.tracking import MlflowClient
from scipy.stats import kurtosis, norm, skew

pytestmark = pytest.mark.slow

GRID = {
    "name": "t",
    "kind": "sma_cross",
    "params": {"bar_size": "5s"},
    "grid": {"fast": [3, 5], "slow": [10, 20]},
    "span": [{"start_minute": 0, "minutes": 5}],
    "experiment": "sweep-test",
}


@pytest.fixture
def cluster(prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Two worker processes (one thread each) that report to the shared test API."""
    from distributed import LocalCluster
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))  # workers inherit it
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield str(local.scheduler_address)


def _dsr_by_hand(returns: dict[str, np.ndarray]) -> tuple[str, float]:
    """Bailey & López de Prado (2014), independently of the project's code."""
    srs = {k: float(np.mean(r) / np.std(r, ddof=1)) for k, r in returns.items()}
    best = max(srs, key=lambda k: srs[k])
    n, v, gamma = len(srs), float(np.var(list(srs.values()), ddof=1)), 0.5772156649015329
    sr0 = math.sqrt(v) * (
        (1 - gamma) * norm.ppf(1 - 1 / n) + gamma * norm.ppf(1 - 1 / (n * math.e))
    )
    r, sr = returns[best], srs[best]
    g3, g4 = float(skew(r)), float(kurtosis(r, fisher=False))
    z = (sr - sr0) * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return best, float(norm.cdf(z))


def test_sweep_on_a_dask_cluster_with_nested_mlflow_runs(cluster: str, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    plan = plan_sweep(get_settings(), dict(GRID), tmp_path / "sweeps")
    # A fifth point whose backtest fails in its worker (its trade file is gone): recorded as a
    # failed point and a FAILED nested run; the other four go on.
    good = list(plan.jobs)
    lost = good[0].point.model_copy(update={"point_id": "p004"})
    plan.jobs.append(
        replace(
            good[0],
            point=lost,
            replay_file=tmp_path / "gone.csv",
            run_id="lost",
            directory=good[0].directory.parent / "p004",
        )
    )
    summary = run_sweep(plan, Cluster(address=cluster), uri)

    assert (summary.points, summary.failed, summary.trials) == (5, 1, 4)
    rows = {r["point"]: r for r in summary.rows}
    assert "gone.csv" in rows["p004"]["error"]
    # Every point journaled into its own store; read each back independently.
    returns: dict[str, np.ndarray] = {}
    for job in good:
        assert (job.directory / "journal").is_dir()
        data = load(point_settings(get_settings(), job.directory), job.run_id)
        (row,) = data.report.strategies
        assert rows[job.point.point_id]["pnl"] == pytest.approx(row.pnl, abs=1e-9)
        assert rows[job.point.point_id]["fills"] == row.fills
        returns[job.point.point_id] = period_returns(data.curves[row.name].equity)
    assert sum(rows[j.point.point_id]["fills"] for j in good) > 0
    best, dsr = _dsr_by_hand(returns)
    assert summary.best == best
    assert summary.dsr == pytest.approx(dsr, rel=1e-9, abs=1e-12)
    table = (plan.directory / "sweep.md").read_text()
    assert f"| {best} |" in table and "deflated Sharpe ratio" in table

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("sweep-test")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FAILED"  # a point failed: the sweep is not clean
    assert parent.data.tags["best.point"] == best
    assert parent.data.metrics["dsr"] == pytest.approx(dsr, rel=1e-9, abs=1e-12)
    assert parent.data.metrics["trials"] == 4
    assert len(children) == 5
    (broken,) = [c for c in children if c.data.tags["sweep.point"] == "p004"]
    assert broken.info.status == "FAILED" and "gone.csv" in broken.data.tags["error"]
    children = [c for c in children if c is not broken]
    swept = {(c.data.params["fast"], c.data.params["slow"]) for c in children}
    assert swept == {("3", "10"), ("3", "20"), ("5", "10"), ("5", "20")}
    for child in children:
        row = rows[child.data.tags["sweep.point"]]
        assert child.info.status == "FINISHED"
        assert {"pnl", "sharpe", "max_drawdown", "fills", "fees"} <= set(child.data.metrics)
        assert child.data.metrics["pnl"] == pytest.approx(row["pnl"])
        assert child.data.metrics["fills"] == row["fills"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/sweep.md", "sweep/sweep.csv", "sweep/sweep.json"} <= artifacts


def test_arena_sweep_on_a_local_cluster(prefect_harness: None, tmp_path: Path) -> None:
    """The command's default: a temporary local Dask cluster of worker processes."""
    from cryptoarena.cli import app
    from typer.testing import CliRunner

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["sweep", "--kind", "sma_cross", "-p", "fast=3", "-p", "slow=10,20"]
    args += ["--fixed", "bar_size=5s", "--span", "0:3", "--workers", "2", "--name", "cli"]
    args += ["--out", str(tmp_path / "out"), "--tracking-uri", uri]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 points on the local Dask cluster, 2 worker processes" in result.output
    assert "Best point p00" in result.output
    (folder,) = (tmp_path / "out").iterdir()
    assert folder.name.startswith("cli-")
    assert sorted(p.name for p in (folder / "points").iterdir()) == ["p000", "p001"]
    assert "| p000 |" in (folder / "sweep.md").read_text()
