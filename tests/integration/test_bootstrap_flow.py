"""The bootstrap flow (compose's model-bootstrap service): a real Prefect run that makes a tiny
bootstrap champion on an empty registry, then leaves it alone; an unreachable registry is an
error, never mistaken for an empty one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cryptoarena.model.registry import CHAMPION, PROMOTION_TAG, get_alias_version
from cryptoarena.model.tracking import tracking_context
from mlflow.exceptions import MlflowException

from flows.bootstrap import bootstrap_flow, champion_version

pytestmark = pytest.mark.slow
NAME = "btcusdt-15s-bootstraptest"


def test_bootstrap_makes_a_champion_once(prefect_harness: None, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = bootstrap_flow(max_bars=3600, model_name=NAME, tracking_uri=uri)
    assert first["trained"] is True
    version = first["champion"]
    assert get_alias_version(NAME, CHAMPION, tracking_uri=uri) == version
    with tracking_context(uri) as client:
        assert client.get_model_version(NAME, version).tags[PROMOTION_TAG] == "bootstrap"
    again = bootstrap_flow(max_bars=3600, model_name=NAME, tracking_uri=uri)
    assert again == {"model": NAME, "champion": version, "trained": False}


def test_an_unreachable_registry_is_not_an_empty_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(MlflowException):
        champion_version.fn(NAME, "http://127.0.0.1:9")
