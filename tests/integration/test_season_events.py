"""A season's events (issue #19 items 3 and 5): a champion crowned in a real MLflow registry
during the season's UTC days appears, with its version, time, how and promotion message, next
to each day's halts in `arena season report` (text and JSON) and in GET /api/seasons/{name}."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptoarena.cli import app
from cryptoarena.config import Settings, get_settings
from cryptoarena.dashboard.app import create_app
from cryptoarena.model.registry import crown
from cryptoarena.model.tracking import tracking_context
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.integration.season_kit import HALT_AT_H, HALT_REASON, journal_season, season_days
from tests.integration.test_model_registry import NAME

MESSAGE = "promoted: significantly better than persistence (DM p 0.001 < 0.05); now @champion"


@pytest.fixture
def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_store: str
) -> Iterator[Settings]:
    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ARENA_HOME", str(tmp_path))
    monkeypatch.setenv("ARENA_MLFLOW__TRACKING_URI", mlflow_store)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _crown_new_version(mlflow_store: str, tmp: Path) -> str:
    """A new version of the served model crowned through the registry's one crowning path."""
    with tracking_context(mlflow_store) as client:
        if not client.search_registered_models(f"name = '{NAME}'"):
            client.create_registered_model(NAME)
        version = str(client.create_model_version(NAME, source=str(tmp)).version)
        crown(client, NAME, version, "gate", MESSAGE)
    return version


def _champions(rep: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in rep["events"]["events"] if e["kind"] == "champion"]


def test_a_champion_crowned_during_the_season_is_one_of_its_events(
    settings: Settings, mlflow_store: str, tmp_path: Path
) -> None:
    assert settings.serving.model_name == NAME  # the served model is the one crowned below
    days = season_days(3)
    journal_season(settings, "live3")
    runner = CliRunner()
    before = json.loads(runner.invoke(app, ["season", "report", "live3", "--json"]).output)
    seen = {e["version"] for e in _champions(before)}

    crowned_from = int(time.time() * 1000)
    version = _crown_new_version(mlflow_store, tmp_path)
    assert version not in seen

    out = runner.invoke(app, ["season", "report", "live3", "--json"])
    assert out.exit_code == 0, out.output
    rep = json.loads(out.output)
    assert [(b["day"], b["complete"]) for b in rep["days"]] == [(d, True) for d in days]
    mine = [e for e in _champions(rep) if e["version"] == version]
    assert len(mine) == 1, rep["events"]
    event = mine[0]
    assert event["model"] == NAME and event["how"] == "gate" and event["message"] == MESSAGE
    assert crowned_from <= event["at_ms"] <= int(time.time() * 1000)
    assert event["day"] == days[-1]
    assert rep["events"]["champions_note"] is None
    # Each day's halt is on the same timeline, at its time within its day.
    halts = [e for e in rep["events"]["events"] if e["kind"] == "halt"]
    assert [(h["day"], h["strategy"], h["reason"]) for h in halts] == [
        (d, "trend", HALT_REASON) for d in days
    ]
    first_day = next(b for b in rep["days"] if b["day"] == days[0])
    assert halts[0]["at_ms"] % 86_400_000 == HALT_AT_H * 3_600_000
    assert halts[0]["run_id"] == first_day["run_id"]
    stamps = [e["at_ms"] for e in rep["events"]["events"]]
    assert stamps == sorted(stamps)

    text = runner.invoke(app, ["season", "report", "live3"])
    assert text.exit_code == 0, text.output
    assert "events (UTC):" in text.output
    assert f"{NAME} v{version} @champion (gate)" in text.output
    assert f"{days[0]}  ‖ halted: trend 06:30" in text.output

    # The dashboard's season route: the same event, from its cached registry view.
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        served = client.get("/api/seasons/live3").json()
        while served["events"]["champions_pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
            served = client.get("/api/seasons/live3").json()
        assert not served["events"]["champions_pending"], "the registry view never read"
        assert _champions(served) == _champions(rep)
        assert served["events"]["events"] == rep["events"]["events"]
