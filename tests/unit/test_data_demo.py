"""The data demo step fills the lake with shipped data and reports the quality checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptoarena.config import load_settings
from cryptoarena.data.demo import demo_step
from cryptoarena.data.lake import Lake
from rich.console import Console


def test_quick_demo_fills_lake_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_DATA__LAKE_DIR", str(tmp_path / "lake"))
    settings = load_settings()
    console = Console(record=True, width=160)
    line = demo_step(settings, console, quick=True)
    assert "all quality checks passed" in line and "(2,001 new)" in line
    assert "quality: BTCUSDT 2021-01-08: bars 47 rows, ok" in console.export_text()
    assert [p.trades for p in Lake(tmp_path / "lake").info()] == [2001]
    again = demo_step(settings, Console(record=True), quick=True)
    assert "(0 new)" in again  # idempotent: a second demo run adds nothing
