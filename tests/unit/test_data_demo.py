"""The data demo step fills the lake with shipped data and reports the quality checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptoarena.config import load_settings
from cryptoarena.data.demo import demo_step
from cryptoarena.data.lake import Lake
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.samples import TARDIS_DAY, sample_path
from rich.console import Console


def test_quick_demo_fills_lake_with_the_training_day_and_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue #23: the quick demo's lake held the 46-second file only, so the drift flow the demo
    # suggests found 47 bars in its last half hour and failed; now it holds the shipped day.
    monkeypatch.setenv("ARENA_DATA__LAKE_DIR", str(tmp_path / "lake"))
    settings = load_settings()
    day, _ = load_trades(sample_path(TARDIS_DAY))
    console = Console(record=True, width=160)
    line = demo_step(settings, console, quick=True)
    assert "all quality checks passed" in line and f"({len(day):,} new)" in line
    assert "quality: BTCUSDT 2020-02-22: bars" in console.export_text()
    assert [p.trades for p in Lake(tmp_path / "lake").info()] == [len(day)]
    again = demo_step(settings, Console(record=True), quick=True)
    assert "(0 new)" in again  # idempotent: a second demo run adds nothing
