"""The functions the collect flow calls: backfill, compaction and quality checks on real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptoarena.data.collect import backfill, check_quality, expand_sources
from cryptoarena.data.lake import Lake
from cryptoarena.data.samples import BINANCE_FEED, KLINES_2024, NAUTILUS_TRADES, sample_path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in (NAUTILUS_TRADES, BINANCE_FEED, KLINES_2024):
        shutil.copy(sample_path(name), folder / name)
    (folder / "README.md").write_text("not data")
    return folder


def test_backfill_folder_then_again(inbox: Path, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    first = backfill(lake, [inbox])
    assert first.imported == {BINANCE_FEED: 9757, NAUTILUS_TRADES: 2001}
    assert list(first.skipped) == [KLINES_2024] and not first.failed
    again = backfill(lake, [inbox])
    assert again.imported == {BINANCE_FEED: 0, NAUTILUS_TRADES: 0}
    assert again.duplicates == 9757 + 2001
    summary = check_quality(lake)
    assert summary["checked"] == 6 and summary["errors"] == []  # 3 days x (trades, bars)
    assert again.as_dict()["new_trades"] == 0


def test_backfill_refuses_bad_file_and_reports_it(inbox: Path, tmp_path: Path) -> None:
    bad = inbox / "BTCUSDT2020-03-26.csv"
    bad.write_text(
        "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional\n"
        "1585180800.2,BTCUSDT,Buy,0.5,6700.5,PlusTick,same,3.35e+11,0.5,3350.25\n"
        "1585180801.7,BTCUSDT,Sell,0.1,6700.0,MinusTick,same,6.7e+10,0.1,670.0\n"
    )
    report = backfill(Lake(tmp_path / "lake"), [bad])
    assert list(report.failed) == [bad.name] and "duplicate_ids" in report.failed[bad.name]
    assert not Lake(tmp_path / "lake").info()


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        expand_sources([tmp_path / "nope"])


def test_collect_flow_is_a_prefect_flow_with_the_documented_parameters() -> None:
    import inspect

    from flows.collect import collect_flow

    assert collect_flow.name == "collect"
    params = set(inspect.signature(collect_flow.fn).parameters)
    assert params == {
        "sources",
        "symbol",
        "record_s",
        "lake_dir",
        "fail_on_quality",
        "book_depth",
        "book_levels",
    }
