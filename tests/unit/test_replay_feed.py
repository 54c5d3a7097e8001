"""ReplayFeed: recorded real trades as batches, as fast as possible or paced, driving a SimClock."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.bybit_feed import BybitFeed
from cryptoarena.data.feed import LIVE_FEED, FeedCapabilities
from cryptoarena.data.lake import Lake
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S, Trade
from cryptoarena.data.replay_feed import ReplayFeed, batch_bounds
from cryptoarena.data.samples import NAUTILUS_TRADES, sample_path


@pytest.fixture(scope="module")
def trades() -> pd.DataFrame:
    return load_trades(sample_path(NAUTILUS_TRADES))[0]


async def collect(feed: ReplayFeed, clock: SimClock | None = None) -> list[list[Trade]]:
    batches = []
    async for batch in feed:
        if clock is not None:
            assert clock.now_ns() == batch[-1].ts  # the clock is at the batch's last trade
        batches.append(batch)
    return batches


async def test_as_fast_as_possible_drives_sim_clock(trades: pd.DataFrame) -> None:
    clock = SimClock()
    feed = ReplayFeed(trades, clock=clock, batch_ms=100, max_batch=50)
    batches = await collect(feed, clock)
    flat = [t for b in batches for t in b]
    assert [t.trade_id for t in flat] == list(trades["trade_id"])
    assert [t.ts for t in flat] == list(trades["ts"])
    assert flat[0].price == trades["price"].iloc[0] and flat[0].side == trades["side"].iloc[0]
    assert all(len(b) <= 50 for b in batches) and len(batches) == len(feed)
    assert all(b[-1].ts // 100_000_000 == b[0].ts // 100_000_000 for b in batches)
    assert clock.now_ns() == trades["ts"].iloc[-1] and feed.delivered == len(trades)


async def test_paced_replay_waits_for_exchange_time(trades: pd.DataFrame) -> None:
    head = trades[trades["ts"] < trades["ts"].iloc[0] + 3 * NS_PER_S].reset_index(drop=True)
    span_s = (head["ts"].iloc[-1] - head["ts"].iloc[0]) / NS_PER_S
    started = time.monotonic()
    batches = await collect(ReplayFeed(head, speed=10.0))
    assert time.monotonic() - started >= span_s / 10 * 0.95
    assert sum(len(b) for b in batches) == len(head)


async def test_close_stops_and_bad_input_is_refused(trades: pd.DataFrame) -> None:
    feed = ReplayFeed(trades)
    seen = 0
    async for _ in feed:
        seen += 1
        await feed.close()
    assert seen == 1
    with pytest.raises(ValueError, match="sorted"):
        ReplayFeed(trades.iloc[::-1])
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed(trades, speed=0)
    with pytest.raises(ValueError, match="missing columns"):
        ReplayFeed(trades.drop(columns=["price"]))
    assert await collect(ReplayFeed(trades.iloc[:0])) == []


async def test_from_lake_and_file(tmp_path: Path, trades: pd.DataFrame) -> None:
    lake = Lake(tmp_path)
    lake.write_trades("BTCUSDT", trades)
    start = int(trades["ts"].iloc[100])
    batches = await collect(ReplayFeed.from_lake(lake, "BTCUSDT", start_ns=start))
    assert sum(len(b) for b in batches) == int((trades["ts"] >= start).sum())
    from_file = ReplayFeed.from_file(sample_path(NAUTILUS_TRADES))
    assert sum(len(b) for b in await collect(from_file)) == len(trades)


def test_batch_bounds_split_large_windows() -> None:
    ts = np.array([0, 1, 2, 3, 4, 10**9, 10**9 + 1], dtype=np.int64)
    assert batch_bounds(ts, 10**8, 2).tolist() == [0, 2, 4, 5]
    assert batch_bounds(ts, 10**8, 100).tolist() == [0, 5]


def test_a_replay_declares_what_it_is(trades: pd.DataFrame) -> None:
    span = int(trades["ts"].iloc[-1] - trades["ts"].iloc[0])
    assert span > 0
    # As fast as possible: a backtest's feed, with batches without the event loop.
    assert ReplayFeed(trades).capabilities == FeedCapabilities(
        as_fast_as_possible=True, batches=True, span_ns=span
    )
    # At a speed it waits for the wall clock: async only.
    paced = ReplayFeed(trades, speed=10.0)
    assert paced.capabilities == FeedCapabilities(span_ns=span)
    with pytest.raises(ValueError, match="waits"):
        next(paced.batches())
    # A live feed declares nothing.
    assert BybitFeed().capabilities == LIVE_FEED == FeedCapabilities()


def test_batches_across_list_chunks_are_the_trades_in_order(
    trades: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lists are made a chunk at a time: batches straddling chunk edges lose and repeat none."""
    import cryptoarena.data.replay_feed as replay_feed

    whole = [b for b in ReplayFeed(trades, max_batch=37).batches()]
    monkeypatch.setattr(replay_feed, "CHUNK", 101)  # smaller than many batches, prime offsets
    chunked = [b for b in ReplayFeed(trades, max_batch=37).batches()]
    assert len(trades) > 10 * 101  # the precondition: many chunk edges
    assert chunked == whole
    assert [t.trade_id for b in chunked for t in b] == list(trades["trade_id"])


def test_a_long_tape_is_not_held_as_python_objects_per_trade() -> None:
    """A month-long replay must not cost ~100 bytes of Python objects per trade up front."""
    import tracemalloc

    n = 200_000
    rng = np.random.default_rng(3)
    tape = pd.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 50_000_000,
            "price": 100.0 + rng.random(n),
            "size": rng.random(n),
            "side": rng.choice(np.array([-1, 1], dtype=np.int8), n),
            "trade_id": [str(i) for i in range(n)],
        }
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        feed = ReplayFeed(tape)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    seen = sum(len(b) for b in feed.batches())
    assert seen == n
    assert held < 10 * n, f"the feed holds {held / n:.0f} bytes per trade"
