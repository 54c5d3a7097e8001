"""Trades → bars: the vectorised and incremental builders agree, on real and generated trades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.bars import (
    BarBuilder,
    build_bars,
    build_bars_incremental,
    parse_bar_size,
    resample_bars,
)
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S, records_to_bars
from cryptoarena.data.samples import NAUTILUS_TRADES, TARDIS_DAY
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.bar_checks import assert_same_bars, trade_frames


@settings(max_examples=150, deadline=None)
@given(trade_frames(), st.sampled_from([NS_PER_S, 5 * NS_PER_S, 60 * NS_PER_S]), st.integers(1, 50))
def test_incremental_equals_vectorised(trades: pd.DataFrame, bar_ns: int, batch: int) -> None:
    vec = build_bars(trades, bar_ns)
    inc = records_to_bars(build_bars_incremental(trades, bar_ns, batch=batch))
    assert_same_bars(vec, inc)


@settings(max_examples=100, deadline=None)
@given(trade_frames())
def test_bar_invariants(trades: pd.DataFrame) -> None:
    bars = build_bars(trades)
    assert (np.diff(bars["ts"]) == NS_PER_S).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert bars["trades"].sum() == len(trades)
    np.testing.assert_allclose(bars["volume"].sum(), trades["size"].sum(), rtol=1e-9)
    empty = bars["trades"] == 0
    assert (bars.loc[empty, "volume"] == 0).all()
    # An empty bar carries the previous close.
    prev_close = bars["close"].shift(1)
    assert (bars.loc[empty, "close"] == prev_close[empty]).all()


def test_real_day_incremental_matches_vectorised(sample_dir: Path) -> None:
    trades, report = load_trades(sample_dir / TARDIS_DAY)
    assert report.malformed == 0 and len(trades) == 137_988
    vec = build_bars(trades)
    assert len(vec) == 86_392
    assert_same_bars(vec, records_to_bars(build_bars_incremental(trades)))


def test_live_builder_ticks_through_quiet_seconds(sample_dir: Path) -> None:
    trades, _ = load_trades(sample_dir / NAUTILUS_TRADES)
    first = trades.iloc[0]
    builder = BarBuilder(NS_PER_S)
    assert builder.add(int(first.ts), float(first.price), float(first.size), int(first.side)) == []
    closed = builder.advance(int(first.ts) + 3 * NS_PER_S)
    assert len(closed) == 3
    assert closed[0].trades == 1 and closed[1].trades == 0 and closed[1].close == first.price
    with pytest.raises(ValueError, match="older"):
        builder.add(int(first.ts), 1.0, 1.0, 1)


def test_resample_1s_to_1m_equals_direct_1m(sample_dir: Path) -> None:
    trades, _ = load_trades(sample_dir / NAUTILUS_TRADES)
    direct = build_bars(trades, 60 * NS_PER_S)
    via_seconds = resample_bars(build_bars(trades, NS_PER_S), 60 * NS_PER_S)
    assert_same_bars(direct, via_seconds)


@pytest.mark.parametrize(
    ("text", "ns"), [("1s", NS_PER_S), ("5m", 300 * NS_PER_S), (15, 15 * NS_PER_S)]
)
def test_parse_bar_size(text: str | int, ns: int) -> None:
    assert parse_bar_size(text) == ns


@pytest.mark.parametrize("text", ["0s", "1d", "s", "-5m", 0])
def test_parse_bar_size_rejects(text: str | int) -> None:
    with pytest.raises(ValueError, match="bar size"):
        parse_bar_size(text)
