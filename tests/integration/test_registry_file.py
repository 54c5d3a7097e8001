"""The registry file's "surely no such alias" agrees with MLflow on a real store (issue #21 item
6): `arena backtest` skips MLflow only on that answer, so it must never hide a champion."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from cryptoarena.model.champions import CHAMPION
from cryptoarena.model.registry import get_alias_version
from cryptoarena.model.registry_file import KNOWN_REVISIONS, alias_absent
from mlflow.tracking import MlflowClient

NAME = "btcusdt-15s"


@pytest.fixture()
def store(tmp_path: Path) -> str:
    """A registry MLflow created (its schema at MLflow's head revision)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri, uri).search_registered_models()
    return uri


def test_the_known_revision_is_mlflow_s_own(store: str) -> None:
    db = store.removeprefix("sqlite:///")
    with closing(sqlite3.connect(db)) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    # A new MLflow schema: check that registered_model_aliases still holds every alias (name,
    # alias), then add the revision to KNOWN_REVISIONS. Until then backtests ask MLflow.
    assert revision in KNOWN_REVISIONS


def test_absent_only_where_mlflow_finds_nothing(store: str, tmp_path: Path) -> None:
    client = MlflowClient(store, store)

    def both() -> tuple[str | None, str | None]:
        return alias_absent(store, NAME, CHAMPION), get_alias_version(
            NAME, CHAMPION, tracking_uri=store
        )

    absent, version = both()
    assert absent is not None and "no models:/btcusdt-15s@champion" in absent and version is None
    client.create_registered_model(NAME)
    source = tmp_path / "model"
    source.mkdir()
    mv = client.create_model_version(NAME, source=source.as_uri())
    assert both()[0] is not None  # a version, no alias yet
    client.set_registered_model_alias(NAME, CHAMPION, mv.version)
    assert both() == (None, str(mv.version))  # a row: MLflow is asked (and finds it)
    assert alias_absent(store, "another-model", CHAMPION) is not None
    assert alias_absent(store, NAME, "challenger") is not None
    client.delete_registered_model_alias(NAME, CHAMPION)
    absent, version = both()
    assert absent is not None and version is None
