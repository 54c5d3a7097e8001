"""Real Prefect flow runs (one shared temporary API) of retrain and drift on the shipped data,
against a real MLflow registry on SQLite in a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
from cryptoarena.model.registry import CHALLENGER, CHAMPION, get_alias_version
from cryptoarena.model.tracking import tracking_context

from flows.drift import drift_flow
from flows.retrain import retrain_flow

pytestmark = pytest.mark.slow
NAME = "btcusdt-15s-flowtest"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_retrain_then_drift(prefect_harness: None, tmp_path: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = retrain_flow(
        source="sample",
        max_bars=7200,
        tiny=True,
        force=True,  # the tiny model may not beat persistence; the gate's verdict is kept
        model_name=NAME,
        tracking_uri=tracking_uri,
        report_dir=str(tmp_path / "retrain"),
    )
    version = summary["version"]
    assert summary["promoted"] is True
    assert get_alias_version(NAME, CHAMPION, tracking_uri=tracking_uri) == version
    assert get_alias_version(NAME, CHALLENGER, tracking_uri=tracking_uri) == version
    assert summary["gate"].startswith(("promoted", "refused"))
    saved = json.loads((tmp_path / "retrain" / "summary.json").read_text())
    assert saved["version"] == version
    assert "persistence" in (tmp_path / "retrain" / "summary.md").read_text()

    result = drift_flow(
        source="sample",
        max_bars=7200 + 1800,
        last_s=1200,  # the 20 minutes after the training data ends
        model_name=NAME,
        tracking_uri=tracking_uri,
        report_dir=str(tmp_path / "drift"),
    )
    assert isinstance(result["should_retrain"], bool)
    assert result["should_retrain"] == bool(result["reasons"])
    assert (tmp_path / "drift" / "feature_drift.html").stat().st_size > 10_000
    with tracking_context(tracking_uri):
        run = mlflow.get_run(result["mlflow_run_id"])
    assert run.data.tags["kind"] == "drift"
    assert run.data.tags["model.version"] == version
    assert "drift.features.share" in run.data.metrics
