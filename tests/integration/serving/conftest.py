"""Shared fixtures for the forecast-server tests: a real MLflow registry with real tiny models.

One session-scoped registry (SQLite in a tmp dir) holds two versions trained by ``train_tiny`` on
the shipped Binance BTCUSDT day: version 1 is @champion, version 2 is registered but not promoted
(the swap tests promote it by moving the alias, and put it back).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

MODEL = "btcusdt-15s"
HELD_OUT = 30_000  # train_tiny trains on the first 7200 bars; test windows come from later


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    name: str
    champion: str
    challenger: str


@pytest.fixture(scope="session")
def day_bars() -> pd.DataFrame:
    """The shipped Binance BTCUSDT day as 1-second bars (real data)."""
    from cryptoarena.model.datasets import load_bars

    return load_bars()


@pytest.fixture(scope="session")
def registry(
    tmp_path_factory: pytest.TempPathFactory, day_bars: pd.DataFrame
) -> Iterator[Registry]:
    import torch
    from cryptoarena.model.train import train_tiny

    torch.set_num_threads(1)
    root: Path = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    v1 = train_tiny(uri, MODEL, day_bars.iloc[:7200], promote=True)
    v2 = train_tiny(uri, MODEL, day_bars.iloc[3600:10800], promote=False)
    assert (v1.version, v2.version) == ("1", "2")
    yield Registry(uri, MODEL, v1.version, v2.version)


@pytest.fixture(scope="session")
def recent_bars(day_bars: pd.DataFrame) -> pd.DataFrame:
    """400 consecutive real bars the tiny models never trained on."""
    return day_bars.iloc[HELD_OUT : HELD_OUT + 400].reset_index(drop=True)


def make_settings(registry: Registry, **serving: Any) -> Any:
    from cryptoarena.config import MlflowSettings, ServingSettings, Settings

    return Settings(
        mlflow=MlflowSettings(tracking_uri=registry.tracking_uri),
        serving=ServingSettings(model_name=registry.name, **serving),
    )


@pytest.fixture(scope="session")
def settings_for() -> Any:
    """``settings_for(registry, poll_interval_s=..., admin_token=...)`` → Settings."""
    return make_settings
