"""Real Prefect flow runs (one shared temporary API) of retrain and drift on the shipped data,
against a real MLflow registry on SQLite in a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
from cryptoarena.config import Settings, get_settings
from cryptoarena.model import mlops
from cryptoarena.model.registry import CHALLENGER, CHAMPION, get_alias_version
from cryptoarena.model.tracking import tracking_context
from cryptoarena.trading.journal import Journal

from flows.drift import drift_flow
from flows.retrain import retrain_flow

pytestmark = pytest.mark.slow
NAME = "btcusdt-15s-flowtest"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _journal_predictions(settings: Settings, since_ns: int) -> None:
    """Live predictions with realised prices, as the trading worker journals them."""
    with Journal.open(settings, run_id="live") as journal:
        for i in range(60):
            pid = journal.record(
                "predictions",
                {"ts_ns": since_ns + i * 10**9, "base_price": 9_700.0, "predicted_price": 9_700.5},
            )
            journal.set_prediction_outcome(pid, 9_699.0 + (i % 5), since_ns + (i + 15) * 10**9)
        assert journal.sync(30)


def test_retrain_then_drift(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    get_settings.cache_clear()
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

    recent = mlops.load_source_bars(get_settings(), "sample", max_bars=9000, last_s=1200)
    _journal_predictions(get_settings(), int(recent["ts"].iloc[0]))
    result = drift_flow(
        source="sample",
        max_bars=7200 + 1800,
        last_s=1200,  # the 20 minutes after the training data ends
        use_journal=True,
        model_name=NAME,
        tracking_uri=tracking_uri,
        report_dir=str(tmp_path / "drift"),
    )
    assert isinstance(result["should_retrain"], bool)
    assert result["errors_from"] == "journal"
    assert result["mae_bp_current"] > 0
    assert result["should_retrain"] == bool(result["reasons"])
    assert (tmp_path / "drift" / "feature_drift.png").stat().st_size > 1_000
    assert json.loads((tmp_path / "drift" / "drift.json").read_text())["features"]["scores"]
    with tracking_context(tracking_uri):
        run = mlflow.get_run(result["mlflow_run_id"])
    assert run.data.tags["kind"] == "drift"
    assert run.data.tags["model.version"] == version
    assert "drift.features.share" in run.data.metrics
    with tracking_context(tracking_uri) as client:
        logged = {a.path for a in client.list_artifacts(run.info.run_id, "drift")}
    assert {"drift/feature_drift.png", "drift/drift.json"} <= logged
