"""Data tests (Made-With-ML style) over every file shipped in data/sample/: schema, order, ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.bars import build_bars
from cryptoarena.data.loaders import load_binance_klines, load_trades
from cryptoarena.data.quality import check_bars, check_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.samples import (
    BINANCE_FEED,
    BITSTAMP_DAY,
    KLINES_2024,
    KLINES_2025,
    NAUTILUS_TRADES,
    TARDIS_DAY,
    sample_path,
)

TRADE_FILES = (TARDIS_DAY, BINANCE_FEED, NAUTILUS_TRADES, BITSTAMP_DAY)
KLINE_FILES = (KLINES_2024, KLINES_2025)
# Plausible BTC prices per file: catches unit and column mix-ups, not market moves.
PRICE_RANGE = {
    TARDIS_DAY: (9_000, 11_000),
    BINANCE_FEED: (50_000, 70_000),
    NAUTILUS_TRADES: (35_000, 45_000),
    BITSTAMP_DAY: (200, 300),
    KLINES_2024: (60_000, 80_000),
    KLINES_2025: (70_000, 90_000),
}
DAY = {
    TARDIS_DAY: "2020-02-22",
    NAUTILUS_TRADES: "2021-01-08",
    BITSTAMP_DAY: "2015-05-01",
    KLINES_2024: "2024-03-11",
    KLINES_2025: "2025-03-11",
}

_cache: dict[str, pd.DataFrame] = {}


def trades_of(name: str) -> pd.DataFrame:
    if name not in _cache:
        frame, report = load_trades(sample_path(name))
        assert report.malformed == 0, report.summary()
        _cache[name] = frame
    return _cache[name]


def test_every_shipped_file_is_covered(sample_dir: Path) -> None:
    shipped = {p.name for p in sample_dir.iterdir() if p.name != "README.md"}
    assert shipped == set(TRADE_FILES) | set(KLINE_FILES)


@pytest.mark.parametrize("name", TRADE_FILES)
def test_trade_files_pass_quality_checks(name: str) -> None:
    trades = trades_of(name)
    report = check_trades(trades, source=name, gap_tolerance_s=60)
    assert report.ok, report.summary()
    assert len(trades) > 1000
    lo, hi = PRICE_RANGE[name]
    assert trades["price"].between(lo, hi).all()
    assert (trades["size"] > 0).all() and trades["size"].max() < 1_000
    if name in DAY:
        days = pd.to_datetime(trades["ts"], utc=True).dt.strftime("%Y-%m-%d").unique()
        assert list(days) == [DAY[name]]


def test_tape_facts() -> None:
    # The Tardis day is complete and liquid (no minute without a trade); Bitstamp 2015 is not.
    assert not check_trades(trades_of(TARDIS_DAY), gap_tolerance_s=60).gaps
    assert check_trades(trades_of(BITSTAMP_DAY), gap_tolerance_s=60).gaps
    tardis = trades_of(TARDIS_DAY)
    assert set(np.unique(tardis["side"])) == {-1, 1}  # Tardis has the taker side


@pytest.mark.parametrize("name", [TARDIS_DAY, NAUTILUS_TRADES, BINANCE_FEED])
def test_bars_built_from_shipped_trades_pass_checks(name: str) -> None:
    bars = build_bars(trades_of(name))
    report = check_bars(bars, source=name, gap_tolerance_s=300)
    assert report.ok, report.summary()
    assert (np.diff(bars["ts"]) == NS_PER_S).all()
    assert bars["trades"].sum() == len(trades_of(name))


@pytest.mark.parametrize("name", KLINE_FILES)
def test_kline_files_pass_quality_checks(name: str) -> None:
    bars, report = load_binance_klines(sample_path(name))
    assert report.malformed == 0
    assert len(bars) == 1440
    quality = check_bars(bars, source=name, bar_ns=60 * NS_PER_S, gap_tolerance_s=60)
    assert quality.ok and not quality.gaps, quality.summary()
    lo, hi = PRICE_RANGE[name]
    assert bars["close"].between(lo, hi).all()
    first = pd.Timestamp(int(bars["ts"].iloc[0]), tz="UTC")
    assert first == pd.Timestamp(DAY[name], tz="UTC")
