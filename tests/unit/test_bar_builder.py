"""BarBuilder's numpy fast path and its loop path give the same bars as build_bars, however the
trades are cut into batches and whenever advance() ticks in between."""

from __future__ import annotations

import pandas as pd
import pytest
from cryptoarena.data import bar_builder
from cryptoarena.data.bar_builder import BarBuilder
from cryptoarena.data.bars import build_bars
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S, Bar, records_to_bars
from cryptoarena.data.samples import BINANCE_FEED, sample_path
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.bar_checks import assert_same_bars, trade_frames


@st.composite
def trades_and_cuts(draw: st.DrawFn) -> tuple[pd.DataFrame, list[int], list[bool]]:
    frame = draw(trade_frames(max_trades=400))
    n = len(frame)
    cuts = sorted(set(draw(st.lists(st.integers(1, n), max_size=12))) | {n})
    ticks = draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts)))
    return frame, cuts, ticks


def run(frame: pd.DataFrame, cuts: list[int], ticks: list[bool], bar_ns: int) -> list[Bar]:
    builder = BarBuilder(bar_ns)
    out: list[Bar] = []
    cols = [frame[c].to_numpy() for c in ("ts", "price", "size", "side")]
    start = 0
    for end, tick in zip(cuts, ticks, strict=True):
        builder.add_many(*(c[start:end] for c in cols), out)
        if tick and end < len(frame):
            # A quiet-second tick: close bars up to (not past) the next trade's bar.
            out.extend(builder.advance(int(cols[0][end]) // bar_ns * bar_ns))
        start = end
    out.extend(builder.flush())
    return out


@pytest.mark.parametrize("fast_min", [1, 5, 10_000])
@settings(max_examples=40, deadline=None)
@given(data=trades_and_cuts(), bar_ns=st.sampled_from([NS_PER_S, 7 * NS_PER_S, 60 * NS_PER_S]))
def test_any_batching_equals_vectorised(
    fast_min: int,
    data: tuple[pd.DataFrame, list[int], list[bool]],
    bar_ns: int,
) -> None:
    frame, cuts, ticks = data
    old = bar_builder.FAST_PATH_MIN
    bar_builder.FAST_PATH_MIN = fast_min
    try:
        bars = run(frame, cuts, ticks, bar_ns)
    finally:
        bar_builder.FAST_PATH_MIN = old
    assert_same_bars(build_bars(frame, bar_ns), records_to_bars(bars))
    assert all(type(b) is Bar for b in bars)


def test_fast_path_on_real_feed_and_bar_equality() -> None:
    trades, _ = load_trades(sample_path(BINANCE_FEED))
    bars = run(trades, [*range(500, len(trades), 500), len(trades)], [True] * 20, NS_PER_S)
    assert_same_bars(build_bars(trades), records_to_bars(bars))
    b = bars[3]
    assert b == Bar(
        b.ts,
        b.open,
        b.high,
        b.low,
        b.close,
        b.volume,
        b.vwap,
        b.trades,
        b.buy_volume,
        b.sell_volume,
    )
    assert isinstance(b.ts, int) and isinstance(b.trades, int) and isinstance(b.close, float)


def test_out_of_order_batch_is_refused_without_damage() -> None:
    trades, _ = load_trades(sample_path(BINANCE_FEED))
    cols = [trades[c].to_numpy()[:200] for c in ("ts", "price", "size", "side")]
    builder = BarBuilder()
    builder.add_many(*(c[:100] for c in cols))
    state = (builder.last_close, builder._bucket)
    shuffled = [c[100:][::-1] for c in cols]
    with pytest.raises(ValueError, match="time order"):
        builder.add_arrays(*shuffled)
    assert (builder.last_close, builder._bucket) == state
    with pytest.raises(ValueError, match="older than the open bar"):
        builder.add_many(*(c[:60] for c in cols))
