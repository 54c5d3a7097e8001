"""``arena data import`` and ``arena data info`` on the shipped data, into a tmp lake."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptoarena.cli import app
from cryptoarena.data.lake import Lake
from cryptoarena.data.samples import BINANCE_FEED, NAUTILUS_TRADES, sample_path
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def lake_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lake = tmp_path / "lake"
    monkeypatch.setenv("ARENA_DATA__LAKE_DIR", str(lake))
    monkeypatch.setenv("COLUMNS", "200")  # rich would truncate table cells at 80
    return lake


def test_import_then_info(lake_dir: Path) -> None:
    files = [str(sample_path(NAUTILUS_TRADES)), str(sample_path(BINANCE_FEED))]
    result = runner.invoke(app, ["data", "import", *files])
    assert result.exit_code == 0, result.output
    assert "2,001" in result.output and "9,757" in result.output
    assert [p.trades for p in Lake(lake_dir).info()] == [2001, 9738, 19]

    again = runner.invoke(app, ["data", "import", files[0]])
    assert again.exit_code == 0
    row = next(r for r in again.output.splitlines() if NAUTILUS_TRADES in r and "│" in r)
    assert "│ 0 " in row and "2,001" in row  # nothing new, all duplicates

    info = runner.invoke(app, ["data", "info"])
    assert info.exit_code == 0, info.output
    assert "BTCUSDT" in info.output and "2021-01-08" in info.output and "2024-08-09" in info.output
    assert "1 symbol(s), 3 day(s), 11,758 trades" in info.output


def test_missing_file_and_unknown_format(lake_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "no such file" in result.output
    junk = tmp_path / "junk.csv"
    junk.write_text("hello,world\n1,2\n")
    result = runner.invoke(app, ["data", "import", str(junk), str(sample_path(NAUTILUS_TRADES))])
    assert result.exit_code == 1
    assert "unknown trade format" in result.output
    assert [p.trades for p in Lake(lake_dir).info()] == [2001]  # the good file still went in


def test_malformed_rows_are_reported(lake_dir: Path, tmp_path: Path) -> None:
    dump = tmp_path / "BTCUSDT2020-03-26.csv"
    dump.write_text(
        "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional\n"
        "1585180800.2,BTCUSDT,Buy,0.5,6700.5,PlusTick,a1,3.35e+11,0.5,3350.25\n"
        "1585180801.7,BTCUSDT,Sell,oops,6700.0,MinusTick,a2,6.7e+10,0.1,670.0\n"
    )
    result = runner.invoke(app, ["data", "import", str(dump)])
    assert result.exit_code == 0
    assert "malformed: bad time, price or size" in result.output


def test_info_on_empty_lake(lake_dir: Path) -> None:
    result = runner.invoke(app, ["data", "info"])
    assert result.exit_code == 0 and "empty" in result.output


def test_a_text_file_is_one_error_line_and_no_empty_table(lake_dir: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("just some text\n")
    result = runner.invoke(app, ["data", "import", str(notes)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
