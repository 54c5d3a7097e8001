"""`arena` commands start without the heavy libraries they do not use (issue #21 item 6, issue
#19's dashboard memory): the command modules every invocation loads import pandas, Prefect,
MLflow or torch only inside commands; a registry lookup needs no torch or Lightning; the
dashboard's app and the report's modules import the verdict's statistics stack (scipy, arch)
only when a verdict is computed; `arena backtest` with AI arms and no champion, and `arena
report` of its run, import neither MLflow nor torch (issue #21 item 6). Checked on ``sys.modules`` of a fresh interpreter, not timed
(the start-up times are in docs/benchmarks.md, from ``bench/report.py --startup``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("prefect", "pandas", "mlflow", "torch", "dask", "pytorch_lightning", "lightning")
# The verdict's statistics stack, plotting, and the servers' libraries.
STATS = ("scipy", "arch", "statsmodels", "matplotlib")
SERVER = ("uvicorn",)
PROBE = """
import json, sys
from cryptoarena.cli import main
heavy = json.loads(sys.argv[2])
sys.argv = ["arena", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""
IMPORT_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
heavy = json.loads(sys.argv[2])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
"""


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True, env=env,
    )  # fmt: skip
    *text, loaded = done.stdout.strip().splitlines()
    return json.loads(loaded), "\n".join([*text, done.stderr])  # warnings go to stderr


def _heavy_modules_after(
    args: list[str], heavy: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None
) -> tuple[list[str], str]:
    return _run(PROBE, json.dumps(args), json.dumps(heavy), env=env)


def _heavy_packages_of(module: str, heavy: tuple[str, ...]) -> list[str]:
    return _run(IMPORT_PROBE, module, json.dumps(heavy))[0]


def test_flows_list_imports_no_heavy_library_and_says_what_each_flow_does() -> None:
    loaded, text = _heavy_modules_after(["flows", "list"])
    assert loaded == []
    assert "Evidently" not in text  # gone from the project: drift is Wasserstein distances
    assert "Wasserstein" in text
    assert "cron '0 3 * * *'" in text  # the schedules, read without Prefect


def test_help_imports_no_heavy_library() -> None:
    loaded, text = _heavy_modules_after(["--help"], HEAVY + STATS + SERVER)
    assert "sweep" in text
    assert loaded == []


@pytest.mark.parametrize("command", ["backtest", "report", "dashboard", "trade"])
def test_a_command_s_help_imports_no_heavy_library(command: str) -> None:
    loaded, text = _heavy_modules_after([command, "--help"], HEAVY + STATS + SERVER)
    assert f"arena {command}" in text  # its own usage line: the command was reached
    assert loaded == []


def test_the_dashboard_app_imports_no_model_pandas_or_statistics_stack() -> None:
    """Importing the app took 264 MB before any data (pandas, scipy, arch, matplotlib); they
    now come with what needs them (the registry's read, the first verdict), after it answers."""
    assert _heavy_packages_of("cryptoarena.dashboard.app", HEAVY + STATS) == []


def test_the_report_modules_import_the_statistics_stack_only_to_compute() -> None:
    assert _heavy_packages_of("cryptoarena.trading.results.report", HEAVY + STATS) == []


def test_a_registry_lookup_imports_neither_torch_nor_lightning() -> None:
    """`arena backtest` with an AI arm asks the registry for @champion first: MLflow, but no
    torch (only to load a model) and never Lightning (training only)."""
    loaded = _heavy_packages_of("cryptoarena.model.registry", HEAVY)
    assert "mlflow" in loaded  # the probe sees what the module needs
    assert not {"torch", "pytorch_lightning", "lightning"} & set(loaded)


# What a backtest without a model, and a report, must not load: the registry's and the model's
# stack (MLflow ~2 s of CPU with its SQLAlchemy store, torch), the statistics stack, Prefect.
# The backtest needs pandas (the replayed trades); the report does not.
NO_MODEL = (*HEAVY, *STATS, "sqlalchemy", "alembic", "fastapi")
BACKTEST_NO_MODEL = tuple(m for m in NO_MODEL if m != "pandas")


def _arena_env(home: Path, registry: Path) -> dict[str, str]:
    """A temporary home and journal, no model server, the registry at ``registry``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    return env | {
        "ARENA_HOME": str(home),
        "ARENA_MONGO__EMBEDDED_DIR": str(home / "journal"),
        "ARENA_TRADING__KILL_FILE": str(home / "arena.kill"),
        "ARENA_SERVING__URL": "http://127.0.0.1:9",
        "ARENA_MLFLOW__TRACKING_URI": f"sqlite:///{registry}",
        "ARENA_LOG_FILE": str(home / "arena.log"),
    }


def _backtest_then_report(env: dict[str, str]) -> tuple[list[str], list[str], str]:
    """(modules of the backtest, modules of the report of that run, the backtest's output)."""
    config = str(ROOT / "configs" / "arena.example.toml")  # every strategy, both AI arms
    backtest = ["backtest", "--config", config, "--minutes", "1", "--run-id", "start"]
    loaded, text = _heavy_modules_after(backtest, BACKTEST_NO_MODEL, env=env)
    assert "run start:" in text and "leaderboard" in text  # the backtest ran and reported
    assert "NO MODEL for the AI arm" in text and "@champion" in text  # said once, loudly
    reported, report = _heavy_modules_after(["report", "--run-id", "start"], NO_MODEL, env=env)
    assert "leaderboard" in report
    return loaded, reported, text


def test_a_backtest_without_a_registry_and_its_report_import_no_mlflow(tmp_path: Path) -> None:
    """Issue #21 item 6: the AI arms' champion lookup imported MLflow (and created an empty
    registry database) to find nothing; a missing database now says so without MLflow."""
    registry = tmp_path / "registry" / "mlflow.db"
    loaded, reported, text = _backtest_then_report(_arena_env(tmp_path, registry))
    assert f"@champion in the registry at sqlite:///{registry} (no database yet)" in text
    assert loaded == []
    assert reported == []
    assert not registry.exists() and not registry.parent.exists()  # nothing created to look


@pytest.mark.slow
def test_a_backtest_on_a_registry_without_a_champion_imports_no_mlflow(tmp_path: Path) -> None:
    """A registry MLflow made (another model in it, no @champion): read from its file."""
    from mlflow.tracking import MlflowClient

    registry = tmp_path / "mlflow.db"
    MlflowClient(f"sqlite:///{registry}").create_registered_model("another-model")
    loaded, reported, text = _backtest_then_report(_arena_env(tmp_path, registry))
    assert f"no models:/btcusdt-15s@champion in the registry at sqlite:///{registry}" in text
    assert loaded == []
    assert reported == []
