"""`arena` commands that only print fixed text start without the heavy libraries: the command
modules every invocation loads import pandas, Prefect, MLflow or torch only inside commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("prefect", "pandas", "mlflow", "torch", "dask")
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


def _heavy_modules_after(args: list[str]) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    *text, loaded = done.stdout.strip().splitlines()
    return json.loads(loaded), "\n".join(text)


def test_flows_list_imports_no_heavy_library_and_says_what_each_flow_does() -> None:
    loaded, text = _heavy_modules_after(["flows", "list"])
    assert loaded == []
    assert "Evidently" not in text  # gone from the project: drift is Wasserstein distances
    assert "Wasserstein" in text
    assert "cron '0 3 * * *'" in text  # the schedules, read without Prefect


def test_help_imports_no_heavy_library() -> None:
    loaded, text = _heavy_modules_after(["--help"])
    assert "sweep" in text
    assert loaded == []
