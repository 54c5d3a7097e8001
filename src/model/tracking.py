"""MLflow tracking plumbing: where runs and artifacts go (no Lightning here: loading a model
needs only MLflow and torch; the per-epoch metrics callback lives with training).

MLflow keeps its tracking URI in process-global state; :func:`tracking_context` sets it (and the
registry URI) for one block under a lock and puts the previous values back, so a test or a server
that uses another store is not redirected behind its back.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from cryptoarena.config import sqlite_db_path
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

_LOCK = threading.RLock()


def default_artifact_location(tracking_uri: str) -> str | None:
    """Artifacts next to a SQLite database (``<dir>/artifacts``); servers decide for themselves."""
    db = sqlite_db_path(tracking_uri)
    if db is None:
        parsed = urlparse(tracking_uri)
        if parsed.scheme in ("", "file"):
            return (Path(parsed.path or tracking_uri).resolve() / "artifacts").as_uri()
        return None
    return (db.resolve().parent / "artifacts").as_uri()


def prepare_store(tracking_uri: str) -> None:
    db = sqlite_db_path(tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def tracking_context(tracking_uri: str) -> Iterator[MlflowClient]:
    """Point mlflow's global tracking and registry URIs at ``tracking_uri`` for this block."""
    # Download progress bars would clutter logs and the CLI's own progress display.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with _LOCK:
        prepare_store(tracking_uri)
        prev_tracking = mlflow.get_tracking_uri()
        prev_registry = mlflow.get_registry_uri()
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        try:
            yield MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        finally:
            mlflow.set_tracking_uri(prev_tracking)
            mlflow.set_registry_uri(prev_registry)


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """The experiment's id, creating it with artifacts next to the database if new."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(
        client.create_experiment(name, artifact_location=default_artifact_location(tracking_uri))
    )
