"""``arena train`` and ``arena evaluate`` end to end on real bars and a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptoarena.cli import app
from typer.testing import CliRunner


@pytest.mark.slow
def test_train_then_evaluate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    runner = CliRunner()
    args = ["train", "--max-bars", "5000", "--epochs", "1", "--window", "20", "--hidden", "8",
            "--threads", "1", "--no-second-venue", "--promote", "never"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "persistence" in result.output and "ridge" in result.output
    assert "version 1" in result.output and "stays @challenger" in result.output
    assert (tmp_path / "artifacts").is_dir()  # artifacts next to the database

    out = tmp_path / "eval"
    result = runner.invoke(
        app, ["evaluate", "1", "--max-bars", "5000", "--no-second-venue", "--folds", "4",
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ewma_drift" in result.output
    assert "walk_forward, 4 folds" in result.output and "pooled" in result.output
    import json

    report = json.loads((out / "report.json").read_text())
    assert len(report["cv"]["folds"]) == 3 and "skill_ci95" in report["cv"]["pooled"]["ridge"]
    # Every scored window's forecast and error is saved (and logged to MLflow): the report's
    # test-split skill is reproduced from them by the one skill definition.
    import pandas as pd
    from cryptoarena.model.skill import forecast_skill

    windows = pd.read_parquet(out / "windows.parquet")
    assert {"test", "cv"} == set(windows["section"])
    lstm = windows[(windows["section"] == "test") & (windows["model"] == "lstm")]
    sk = forecast_skill(lstm["err_bp"].to_numpy(), lstm["persistence_err_bp"].to_numpy())
    assert sk.n == report["test"]["lstm"]["n"]
    assert sk.mse_skill == pytest.approx(report["test"]["lstm"]["skill"], rel=1e-9, abs=1e-12)
    assert "every window's forecast and error: MLflow run" in result.output
    bad_scheme = runner.invoke(app, ["evaluate", "1", "--max-bars", "5000", "--scheme", "x"])
    assert bad_scheme.exit_code == 2 and "walk_forward or blocked" in bad_scheme.output

    missing = runner.invoke(
        app, ["evaluate", "champion", "--max-bars", "5000", "--no-second-venue"]
    )
    assert missing.exit_code == 1 and "not in the registry" in missing.output
    bad = runner.invoke(app, ["train", "--promote", "sometimes", "--max-bars", "5000"])
    assert bad.exit_code != 0


@pytest.mark.slow
def test_quick_demo_step_registers_a_bootstrap_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptoarena.config import get_settings
    from cryptoarena.model.demo import demo_step
    from cryptoarena.model.registry import CHAMPION, get_alias_version
    from rich.console import Console

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("ARENA_MLFLOW__TRACKING_URI", uri)
    settings = get_settings()
    console = Console(record=True, width=120)
    line = demo_step(settings, console, True)
    assert line.startswith("model: LSTM btcusdt-15s v1")
    assert get_alias_version("btcusdt-15s", CHAMPION, tracking_uri=uri) == "1"
    # The closing line says what the gate really did (a refused model served as bootstrap).
    from cryptoarena.model.registry import load_forecaster

    how = load_forecaster("models:/btcusdt-15s@champion", tracking_uri=uri).info.promotion
    assert how in ("gate", "bootstrap")
    assert ("bootstrap @champion" in line) == (how == "bootstrap")
    assert "pooled out-of-sample" in line and "paired win over the champion" in line
    text = console.export_text()
    assert "persistence" in text and "skill" in text


@pytest.mark.slow
def test_book_model_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--book: the LSTM trains on book features, evaluate compares with trades-only ridge."""
    from cryptoarena.data.samples import BITSTAMP_DAY, sample_path
    from cryptoarena.model.registry import load_forecaster

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("ARENA_MLFLOW__TRACKING_URI", uri)
    runner = CliRunner()
    day = str(sample_path(BITSTAMP_DAY))
    args = ["train", "--book", "--data", day, "--max-bars", "6000", "--epochs", "1", "--window",
            "20", "--hidden", "8", "--no-second-venue", "--promote", "never"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    model = load_forecaster("models:/btcusdt-15s/1", tracking_uri=uri)
    assert model.spec.book and "book_imb_1" in model.info.feature_names
    result = runner.invoke(
        app, ["evaluate", "1", "--book", "--data", day, "--max-bars", "6000",
              "--no-second-venue", "--folds", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ridge_trades" in result.output
    no_book = runner.invoke(app, ["evaluate", "1", "--data", day, "--max-bars", "6000",
                                  "--no-second-venue"])  # fmt: skip
    assert no_book.exit_code == 1 and "bid" in no_book.output
