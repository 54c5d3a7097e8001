"""Integration fixtures shared across areas."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """ONE temporary Prefect API (SQLite) for the whole session: starting it takes ~15 s, so
    every test that runs a real flow shares it (request this fixture, do not start another)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh MLflow tracking store and registry (SQLite) for one test module."""
    import torch

    torch.set_num_threads(1)
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def day_bars() -> pd.DataFrame:
    """The first two hours of the shipped day's 1-second bars."""
    from cryptoarena.model.datasets import load_bars

    return load_bars(max_bars=7200)
