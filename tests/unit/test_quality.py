"""The quality checks find what they claim to find (each check fails on a broken copy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.bars import build_bars
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.quality import check_bars, check_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.samples import NAUTILUS_TRADES, sample_path


@pytest.fixture(scope="module")
def trades() -> pd.DataFrame:
    return load_trades(sample_path(NAUTILUS_TRADES))[0]


def checks(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.check for f in report.errors}


def test_clean_real_trades_pass(trades: pd.DataFrame) -> None:
    report = check_trades(trades)
    assert report.ok and report.rows == len(trades)
    assert report.first_ns == trades["ts"].iloc[0] and report.last_ns == trades["ts"].iloc[-1]


def test_broken_trades_are_reported(trades: pd.DataFrame) -> None:
    bad = trades.copy()
    bad.loc[5, "ts"] = bad.loc[4, "ts"] - 1  # time runs backwards
    bad.loc[7, "trade_id"] = bad.loc[6, "trade_id"]  # duplicate id
    bad.loc[9, "price"] = 0.0
    bad.loc[10, "size"] = -1.0
    report = check_trades(bad)
    assert not report.ok
    assert checks(report) == {"monotonic_time", "duplicate_ids", "positive_price", "positive_size"}
    assert "row 5" in next(f.detail for f in report.errors if f.check == "monotonic_time")


def test_wrong_time_unit_and_schema(trades: pd.DataFrame) -> None:
    ms = trades.assign(ts=trades["ts"] // 1_000_000)
    assert "utc_time" in checks(check_trades(ms))
    assert "schema" in checks(check_trades(trades.drop(columns=["trade_id"])))


def test_gaps_are_spans_over_tolerance(trades: pd.DataFrame) -> None:
    shifted = trades.copy()
    shifted.loc[1000:, "ts"] += 120 * NS_PER_S
    report = check_trades(shifted, gap_tolerance_s=60)
    assert report.ok  # gaps are facts, not errors
    assert len(report.gaps) == 1
    gap = report.gaps[0]
    assert gap.start_ns == shifted["ts"].iloc[999] and gap.end_ns == shifted["ts"].iloc[1000]
    assert gap.seconds > 120
    assert "1 gaps" in report.summary()


def test_broken_bars_are_reported(trades: pd.DataFrame) -> None:
    bars = build_bars(trades)
    assert check_bars(bars).ok
    bad = bars.copy()
    bad.loc[3, "high"] = bad.loc[3, "open"] - 1
    bad.loc[4, "low"] = bad.loc[4, "close"] + 1
    bad.loc[5, "ts"] += 1  # not aligned
    bad.loc[6, "close"] = -1.0
    report = check_bars(bad)
    assert {"high", "low", "aligned_time", "positive_price"} <= checks(report)
    dup = pd.concat([bars.iloc[:3], bars.iloc[2:]], ignore_index=True)
    assert "monotonic_time" in checks(check_bars(dup))


def test_quiet_spans_in_bars_are_gaps(trades: pd.DataFrame) -> None:
    shifted = trades.copy()
    shifted.loc[1000:, "ts"] += 100 * NS_PER_S
    bars = build_bars(shifted)
    report = check_bars(bars, gap_tolerance_s=60)
    assert report.ok and len(report.gaps) == 1
    assert np.isclose(report.gaps[0].seconds, 101, atol=1.01)
