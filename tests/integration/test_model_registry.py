"""Model behaviour against a real MLflow registry (SQLite in a tmp dir, artifacts next to it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.model.registry import (
    CHALLENGER,
    CHAMPION,
    ModelNotFound,
    download_reference,
    get_alias_version,
    load_forecaster,
)
from cryptoarena.model.tracking import tracking_context
from cryptoarena.model.train import TINY_CONFIG, train, train_tiny

from tests.floats import assert_float32_close

NAME = "btcusdt-15s"


@pytest.fixture(scope="module")
def trained(mlflow_store: str, day_bars: pd.DataFrame):  # type: ignore[no-untyped-def]
    return train(day_bars, tracking_uri=mlflow_store, name=NAME, cfg=TINY_CONFIG, promote="force")


def _windows(day_bars: pd.DataFrame, min_bars: int, ends: list[int]) -> list[pd.DataFrame]:
    return [day_bars.iloc[e - min_bars : e] for e in ends]


def test_reloaded_model_gives_the_same_forecasts(
    mlflow_store: str, trained, day_bars: pd.DataFrame
) -> None:  # type: ignore[no-untyped-def]
    loaded = load_forecaster(f"models:/{NAME}@{CHAMPION}", tracking_uri=mlflow_store)
    assert loaded.info.version == trained.info.version
    assert loaded.info.run_id == trained.info.run_id
    assert loaded.info.min_bars == trained.info.min_bars
    assert loaded.info.feature_names == trained.info.feature_names
    windows = _windows(day_bars, loaded.info.min_bars, [500, 3000, 6000, 7200])
    mem = trained.forecaster.predict(windows)
    disk = loaded.predict(windows)
    assert disk.shape == (4, 15)
    assert_float32_close(disk, mem)  # exported graph vs eager net: float32 rounding
    # Batch sizes other than the input example's (2) work: the batch dimension is dynamic.
    assert loaded.predict(windows[:1]).shape == (1, 15)


LOAD_PROBE = """
import json, sys
from cryptoarena.model.registry import load_forecaster
loaded = load_forecaster(sys.argv[1], tracking_uri=sys.argv[2])
lightning = sorted(m for m in sys.modules if m.split(".")[0] in ("pytorch_lightning", "lightning"))
import pytorch_lightning  # still importable afterwards (a training run in the same process)
print(json.dumps({"version": loaded.info.version, "lightning": lightning}))
"""


def test_the_champion_loads_without_importing_lightning(mlflow_store: str, trained) -> None:  # type: ignore[no-untyped-def]
    """Issue #21 item 6: loading a model goes through MLflow's own loader (its pickle-safety
    checks included) but never imports PyTorch Lightning (~3 s of a backtest's start-up)."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_PROBE, f"models:/{NAME}@{CHAMPION}", mlflow_store],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["version"] == trained.info.version
    assert out["lightning"] == []


def test_registry_aliases_and_metadata(mlflow_store: str, trained) -> None:  # type: ignore[no-untyped-def]
    assert get_alias_version(NAME, CHAMPION, tracking_uri=mlflow_store) == trained.info.version
    assert get_alias_version(NAME, CHALLENGER, tracking_uri=mlflow_store) == trained.info.version
    assert get_alias_version(NAME, "nope", tracking_uri=mlflow_store) is None
    assert get_alias_version("no-such-model", CHAMPION, tracking_uri=mlflow_store) is None
    assert "skill" in trained.info.metrics and "dm_p" in trained.info.metrics
    # The gate's evidence: cross-validated folds, pooled tests, verdict and numbers as tags.
    cv = trained.report["cv"]
    assert cv["folds"] and {"lstm", "persistence", "ridge"} <= set(cv["pooled"])
    assert cv["pooled"]["lstm"]["n"] > 0 and "dm_p" in cv["pooled"]["lstm"]
    with tracking_context(mlflow_store) as client:
        tags = client.get_model_version(NAME, trained.info.version).tags
    assert tags["promotion"] == "forced" and tags["gate.verdict"] in ("promote", "refuse")
    assert float(tags["gate.alpha"]) == 0.05 and "gate.candidate_dm_p" in tags
    loaded = load_forecaster(f"models:/{NAME}@{CHAMPION}", tracking_uri=mlflow_store)
    assert loaded.info.promotion == "forced" and loaded.info.gate == tags["gate"]
    with pytest.raises(ModelNotFound):
        load_forecaster(f"models:/{NAME}/999", tracking_uri=mlflow_store)
    with pytest.raises(ValueError):
        load_forecaster("runs:/abc/model", tracking_uri=mlflow_store)


def test_reference_sample_travels_with_the_model(
    mlflow_store: str, trained, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = download_reference(f"models:/{NAME}@{CHAMPION}", tracking_uri=mlflow_store, dst=tmp_path)
    ref = pd.read_parquet(path)
    assert list(ref.columns) == list(trained.info.feature_names)
    assert len(ref) > 100 and np.isfinite(ref.to_numpy()).all()


def test_train_tiny_contract(
    mlflow_store: str, day_bars: pd.DataFrame, capfd: pytest.CaptureFixture[str]
) -> None:
    before = get_alias_version(NAME, CHAMPION, tracking_uri=mlflow_store)
    info = train_tiny(mlflow_store, NAME, bars=day_bars.iloc[:4000], promote=False)
    # Registration is logged by us, not printed by MLflow over the quiet console.
    # (Our own log lines may reach stderr when a handler is set up; MLflow's bare prints are
    # lines of their own.)
    printed = ("Successfully registered model", "Registered model", "Created version")
    err = capfd.readouterr().err
    assert not [line for line in err.splitlines() if line.startswith(printed)], err
    assert get_alias_version(NAME, CHALLENGER, tracking_uri=mlflow_store) == info.version
    assert get_alias_version(NAME, CHAMPION, tracking_uri=mlflow_store) == before
    assert info.horizon == 15 and info.window == TINY_CONFIG.window
    promoted = train_tiny(mlflow_store, NAME, bars=day_bars.iloc[:4000], promote=True)
    assert get_alias_version(NAME, CHAMPION, tracking_uri=mlflow_store) == promoted.version
