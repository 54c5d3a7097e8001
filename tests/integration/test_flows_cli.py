"""``arena flows``: the Prefect flows from the command line, without ``python -m flows.…``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptoarena.cli import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
ARENA = str(Path(sys.executable).with_name("arena"))
runner = CliRunner()


def test_list_and_help_name_the_flows() -> None:
    listed = runner.invoke(app, ["flows", "list"])
    assert listed.exit_code == 0, listed.output
    for name in ("retrain", "drift", "collect"):
        assert name in listed.output
    assert "cron '0 3 * * *'" in listed.output  # the nightly retrain deployment
    bare = runner.invoke(app, ["flows", "run"])
    assert bare.exit_code == 2 and "retrain|drift|collect" in bare.output


def test_an_unknown_flow_is_one_error_line_listing_the_flows() -> None:
    result = runner.invoke(app, ["flows", "run", "retrian"])
    assert result.exit_code == 2
    assert "error: unknown flow 'retrian': choose one of retrain, drift, collect" in result.output
    assert "Traceback" not in result.output


def test_options_after_the_name_go_to_the_flow() -> None:
    result = runner.invoke(app, ["flows", "run", "retrain", "--help"])
    assert result.exit_code == 0, result.output
    assert "usage: arena flows run retrain" in result.output
    assert "--tiny" in result.output and "--max-bars" in result.output
    bad = runner.invoke(app, ["flows", "run", "drift", "--no-such-option"])
    assert bad.exit_code == 2 and "unrecognized arguments: --no-such-option" in bad.output


@pytest.mark.slow
def test_arena_flows_run_retrain_is_a_real_prefect_run_from_any_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARENA_", "PREFECT_"))}
    env |= {
        "ARENA_MLFLOW__TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "ARENA_DATA__SAMPLE_DIR": str(ROOT / "data" / "sample"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "OMP_NUM_THREADS": "1",
    }
    args = ["flows", "run", "retrain", "--tiny", "--force", "--max-bars", "7200"]
    args += ["--report-dir", str(tmp_path / "report")]
    done = subprocess.run(
        [ARENA, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["promoted"] is True and summary["version"] == "1"
    # A real Prefect flow run: its run lines are in the log file (a command's console is quiet).
    logged = (tmp_path / "var" / "log" / "arena.log").read_text()
    assert "Beginning flow run" in logged and "Completed" in logged
    # Quiet: no telemetry trouble, no library request lines; those are in the log file.
    assert "Traceback" not in output and "database is locked" not in output
    assert "HTTP Request" not in output and "Beginning flow run" not in output
    assert "HTTP Request" in logged


def test_a_drift_check_without_bars_is_one_error_line(tmp_path: Path) -> None:
    """The lake holds no bars for the window: one line saying so and exit 2, not a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARENA_", "PREFECT_"))}
    env |= {
        "ARENA_MLFLOW__TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    assert not (tmp_path / "var" / "lake").exists()  # an empty lake
    done = subprocess.run(
        [ARENA, "flows", "run", "drift", "--report-dir", str(tmp_path / "report")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: drift:")]
    assert len(errors) == 1 and "no bars" in errors[0], output
