"""``arena sweep`` refuses a bad grid with one clear line (exit 2) before anything starts:
no Prefect API, no Dask cluster, no output folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptoarena.cli import app
from typer.testing import CliRunner

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "toml", "needle"),
    [
        (["--kind", "nope"], None, "unknown strategy kind 'nope'"),
        ([], None, "no strategy kind"),
        (["--kind", "sma_cross", "-p", "fast"], None, "expected key=v1,v2"),
        (["--kind", "sma_cross", "-p", "fast=20", "-p", "slow=10"], None, "must be shorter"),
        (["--kind", "sma_cross", "--span", "x:1"], None, "expected a span"),
        (["--kind", "sma_cross", "--span", "5000:10"], None, "after the replay ends"),
        (["--kind", "sma_cross", "--replay-file", "/no/such.csv"], None, "replay file not found"),
        ([], "kind = [", "not valid TOML"),
        (["--kind", "macd", "--dask-address", "tcp://127.0.0.1:9"], None, "no Dask scheduler"),
        ([], 'kind = "macd"\n[grid]\nfast = 12\n', "grid.fast"),
    ],
)
def test_bad_grid_one_line(args: list[str], toml: str | None, needle: str, tmp_path: Path) -> None:
    if toml is not None:
        grid = tmp_path / "grid.toml"
        grid.write_text(toml)
        args = [str(grid), *args]
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert needle in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_grid_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sweep", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "sweep file not found" in result.output
