"""MLflow for a sweep: one parent run per sweep, one nested run per grid point.

Only the flow's own process talks to MLflow (workers return their numbers), so a SQLite
tracking store has one writer and a remote Dask worker needs no access to it. Everything goes
through an explicit :class:`MlflowClient` (no process-global tracking URI is touched). Logging a
point is idempotent: a retried call finds the child run it already created instead of adding a
second one.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptoarena.trading.sweeps.backtest import PointResult
from cryptoarena.trading.sweeps.table import SweepSummary, render_csv, render_json, render_markdown
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

logger = logging.getLogger(__name__)

POINT_TAG = "sweep.point"
MAX_PARAM = 6000  # MLflow's limit on a param value's length


def _artifact_location(tracking_uri: str) -> str | None:
    """Artifacts next to a SQLite database (``<dir>/artifacts``), not in the working directory."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        db.parent.mkdir(parents=True, exist_ok=True)
        return (db.resolve().parent / "artifacts").as_uri()
    parsed = urlparse(tracking_uri)
    if parsed.scheme in ("", "file"):
        return (Path(parsed.path or tracking_uri).resolve() / "artifacts").as_uri()
    return None  # a tracking server decides


def client(tracking_uri: str) -> MlflowClient:
    _artifact_location(tracking_uri)  # creates the database's folder
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(mlflow: MlflowClient, name: str, tracking_uri: str) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(mlflow.create_experiment(name, artifact_location=_artifact_location(tracking_uri)))


def _params(values: dict[str, Any]) -> list[Param]:
    out = []
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out.append(Param(key, text[:MAX_PARAM]))
    return out


def _metrics(values: dict[str, float], ts_ms: int) -> list[Metric]:
    return [Metric(k, v, ts_ms, 0) for k, v in values.items()]


def start_sweep(
    tracking_uri: str, experiment: str, name: str, params: dict[str, Any]
) -> tuple[str, str]:
    """The parent run (running) of a sweep: (experiment id, run id)."""
    mlflow = client(tracking_uri)
    exp = experiment_id(mlflow, experiment, tracking_uri)
    run = mlflow.create_run(exp, run_name=name, tags={"kind": "sweep"})
    mlflow.log_batch(run.info.run_id, params=_params(params))
    return exp, run.info.run_id


def log_point(tracking_uri: str, experiment: str, parent: str, result: PointResult) -> str:
    """The point's nested run (params, metrics, its status); returns its run id."""
    mlflow = client(tracking_uri)
    point = result.point
    found = mlflow.search_runs(
        [experiment],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent}' "
        f"and tags.`{POINT_TAG}` = '{point.point_id}'",
        max_results=1,
    )
    if found:
        child = found[0].info.run_id
    else:
        tags = {MLFLOW_PARENT_RUN_ID: parent, POINT_TAG: point.point_id, "kind": "sweep-point"}
        child = mlflow.create_run(
            experiment, run_name=f"{point.point_id} {point.label()}", tags=tags
        ).info.run_id
    params = {**point.params, "span.start_minute": point.span.start_minute,
              "span.minutes": point.span.minutes, "journal_run_id": result.run_id}  # fmt: skip
    run = mlflow.get_run(child)
    params = {k: v for k, v in params.items() if k not in run.data.params}
    ts_ms = int(run.info.start_time or 0)
    tags_out = [RunTag("error", result.error[:MAX_PARAM])] if result.error else []
    mlflow.log_batch(child, metrics=_metrics(result.metrics(), ts_ms), params=_params(params),
                     tags=tags_out)  # fmt: skip
    status = RunStatus.FINISHED if result.ok else RunStatus.FAILED
    mlflow.set_terminated(child, RunStatus.to_string(status))
    return child


def finish_sweep(tracking_uri: str, parent: str, summary: SweepSummary) -> None:
    """The parent run's headline metrics, the table as artifacts, and its end."""
    mlflow = client(tracking_uri)
    values: dict[str, float | None] = {
        "points": float(summary.points),
        "failed": float(summary.failed),
        "trials": float(summary.trials),
        "dsr": summary.dsr,
        "best.sharpe_per_period": summary.best_sharpe_pp,
        "sr0_per_period": summary.threshold_pp,
    }
    best = next((r for r in summary.rows if r["point"] == summary.best), None)
    if best is not None:
        values |= {"best.pnl": best["pnl"], "best.sharpe": best["sharpe"]}
    run = mlflow.get_run(parent)
    metrics = {k: float(v) for k, v in values.items() if v is not None}
    tags = [RunTag(MLFLOW_RUN_NAME, summary.name)]
    if summary.best is not None:
        tags.append(RunTag("best.point", summary.best))
    mlflow.log_batch(parent, metrics=_metrics(metrics, int(run.info.start_time or 0)), tags=tags)
    with tempfile.TemporaryDirectory() as tmp:
        for filename, text in (
            ("sweep.md", render_markdown(summary)),
            ("sweep.csv", render_csv(summary)),
            ("sweep.json", render_json(summary)),
        ):
            (Path(tmp) / filename).write_text(text)
            mlflow.log_artifact(parent, str(Path(tmp) / filename), "sweep")
    mlflow.set_terminated(parent, "FINISHED" if summary.failed == 0 else "FAILED")


def abort_sweep(tracking_uri: str, parent: str) -> None:
    client(tracking_uri).set_terminated(parent, "FAILED")
