"""The live order book end to end: the real pybit client and BybitFeed against the fake Bybit
``orderbook.50`` stream (snapshot, deltas, a lost delta → resync), the recorder writing book
snapshots to the lake, and the key check: book features computed on the live path (feed → book
snapshots → 1 s bars with book columns → features) equal those of the offline path (recorded
messages → lake → loader → features), bit for bit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.bar_builder import BarBuilder
from cryptoarena.data.book import (
    BookSnapshot,
    LiveBookBars,
    book_frame,
    book_states,
    lake_book_bars,
    replay_book_messages,
)
from cryptoarena.data.bybit_feed import BybitFeed, BybitFeedConfig
from cryptoarena.data.collect import record_live
from cryptoarena.data.lake import Lake
from cryptoarena.data.records import Bar, Trade, trades_from_records
from cryptoarena.model import book as model_book
from cryptoarena.model.features import BOOK_FEATURES, FeatureSpec, compute_features

from tests.fakes.bybit_book import random_book_changes
from tests.fakes.bybit_server import FakeBybit

T0 = 1_767_571_200_000  # 2026-01-05 00:00:00 UTC, ms
BOOK_TOPIC = "orderbook.50.BTCUSDT"


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        yield server


def config(fake: FakeBybit, **kw: object) -> BybitFeedConfig:
    base: dict[str, object] = {
        "ws_url": fake.ws_url(),
        "rest_url": fake.http_url,
        "check_interval_s": 0.1,
        "backoff_initial_s": 0.2,
        "connect_timeout_s": 5.0,
        "book_depth": 50,
    }
    return BybitFeedConfig(**(base | kw))  # type: ignore[arg-type]


async def until(cond: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


def top(fake: FakeBybit, levels: int) -> tuple[tuple[tuple[float, float], ...], ...]:
    book = fake.book("BTCUSDT")
    bids = tuple(sorted(book.bids.items(), key=lambda lv: -lv[0])[:levels])
    return bids, tuple(sorted(book.asks.items())[:levels])


async def test_lost_delta_resyncs_and_no_state_of_a_broken_book_is_published(
    fake: FakeBybit,
) -> None:
    changes = list(random_book_changes(11, 40, T0))
    ts0, bids0, asks0 = changes[0]
    fake.push_book("BTCUSDT", bids0, asks0, ts_ms=ts0)  # the book exists before we subscribe
    got: list[BookSnapshot] = []
    feed = BybitFeed(config(fake, book_levels=50), on_book=got.append)
    trades: list[Trade] = []

    async def consume() -> None:
        async for batch in feed:
            trades.extend(batch)

    task = asyncio.create_task(consume())
    truth: dict[int, tuple[object, ...]] = {fake.book("BTCUSDT").u: top(fake, 50)}
    try:
        await asyncio.to_thread(fake.wait_subscribed, BOOK_TOPIC)
        await asyncio.to_thread(fake.wait_subscribed, "publicTrade.BTCUSDT")
        for i, (ts, bids, asks) in enumerate(changes[1:]):
            if i == 60:
                fake.lose_book_deltas = 1  # this delta never reaches the client: a u gap
            await asyncio.to_thread(fake.push_book, "BTCUSDT", bids, asks, ts_ms=ts)
            truth[fake.book("BTCUSDT").u] = top(fake, 50)
            if i == 61:  # the next delta shows the gap: the feed resubscribes, gets a snapshot
                await until(lambda: feed.stats["book_snapshots"] == 2)
        await asyncio.to_thread(fake.push_trades, "BTCUSDT", [Trade(T0 * 10**6, 65e3, 1, 1, "x")])
        await until(lambda: len(trades) == 1)
    finally:
        await feed.close()
        await asyncio.gather(task, return_exceptions=True)
    assert feed.book is not None
    feed.book.sampler.flush()
    assert feed.stats["book_gaps"] == 1 and feed.stats["book_resyncs"] == 1
    assert fake.stats["book_deltas_lost"] == 1
    assert len(got) >= 25
    for snap in got:  # every published state is the exchange's book at that update id
        assert (snap.bids, snap.asks) == truth[snap.u], snap.u
    assert got[-1].u == fake.book("BTCUSDT").u  # in step again after the resync
    assert [s.ts for s in got] == sorted(s.ts for s in got)


async def test_a_resync_without_an_answer_is_asked_again(fake: FakeBybit) -> None:
    changes = list(random_book_changes(17, 20, T0))
    fake.push_book("BTCUSDT", *changes[0][1:], ts_ms=changes[0][0])
    feed = BybitFeed(config(fake, book_levels=50, book_resync_s=0.5))

    async def consume() -> None:
        async for _ in feed:
            pass

    task = asyncio.create_task(consume())
    try:
        await asyncio.to_thread(fake.wait_subscribed, BOOK_TOPIC)
        await until(lambda: feed.stats["book_snapshots"] == 1)
        fake.lose_book_deltas = 1
        fake.withhold_book_snapshots = 1  # the first resync brings nothing
        for ts, bids, asks in changes[1:4]:
            await asyncio.to_thread(fake.push_book, "BTCUSDT", bids, asks, ts_ms=ts)
        await until(lambda: feed.stats["book_snapshots"] == 2)
        for ts, bids, asks in changes[4:]:
            await asyncio.to_thread(fake.push_book, "BTCUSDT", bids, asks, ts_ms=ts)
        last_u = fake.book("BTCUSDT").u
        await until(lambda: feed.book is not None and feed.book.book.u == last_u)
    finally:
        await feed.close()
        await asyncio.gather(task, return_exceptions=True)
    assert feed.stats["book_gaps"] == 1 and feed.stats["book_resyncs"] == 2
    assert feed.book is not None
    snap = feed.book.book.snapshot(50)
    assert (snap.bids, snap.asks) == top(fake, 50)


async def test_service_restart_u1_resets_the_book_without_a_resync(fake: FakeBybit) -> None:
    changes = list(random_book_changes(13, 30, T0))
    fake.push_book("BTCUSDT", *changes[0][1:], ts_ms=changes[0][0])
    got: list[BookSnapshot] = []
    feed = BybitFeed(config(fake, book_levels=50), on_book=got.append)

    async def consume() -> None:
        async for _ in feed:
            pass

    task = asyncio.create_task(consume())
    truth: dict[int, tuple[object, ...]] = {}
    try:
        await asyncio.to_thread(fake.wait_subscribed, BOOK_TOPIC)
        for i, (ts, bids, asks) in enumerate(changes[1:]):
            if i == 30:  # the service restarts: the whole book again, u == 1, as a delta
                await asyncio.to_thread(fake.restart_book, "BTCUSDT", ts_ms=ts - 1)
            await asyncio.to_thread(fake.push_book, "BTCUSDT", bids, asks, ts_ms=ts)
            truth[fake.book("BTCUSDT").u] = top(fake, 50)
        last_u = fake.book("BTCUSDT").u
        await until(lambda: feed.book is not None and feed.book.book.u == last_u)
    finally:
        await feed.close()
        await asyncio.gather(task, return_exceptions=True)
    assert feed.book is not None
    feed.book.sampler.flush()
    assert feed.stats["book_gaps"] == 0 and feed.stats["book_resyncs"] == 0
    assert feed.stats["book_snapshots"] == 2  # the subscription's and the restart's
    assert got[-1].u == last_u < 100  # counting from 1 again
    for snap in got[1:]:
        if snap.u in truth:
            assert (snap.bids, snap.asks) == truth[snap.u]


async def test_trade_only_feed_does_not_subscribe_the_book(fake: FakeBybit) -> None:
    feed = BybitFeed(config(fake, book_depth=0))
    await feed.start()
    try:
        await asyncio.to_thread(fake.wait_subscribed, "publicTrade.BTCUSDT")
        assert fake.subscribers(BOOK_TOPIC) == 0 and feed.book is None
    finally:
        await feed.close()


def exchange_script(seconds: int) -> list[tuple[int, str, object]]:
    """Book changes and trades of ``seconds`` seconds, in exchange-time order."""
    events: list[tuple[int, str, object]] = [
        (ts, "book", (b, a)) for ts, b, a in random_book_changes(5, seconds, T0)
    ]
    rng = np.random.default_rng(5)
    for sec in range(seconds):
        for k in range(int(rng.integers(0, 3))):
            ms = T0 + sec * 1000 + int(rng.integers(1000))
            price = 65_000 + float(rng.integers(-20, 20)) / 10
            size = float(rng.integers(1, 8)) / 4  # exact in binary: sums do not depend on order
            trade = Trade(ms * 10**6, price, size, 1 if k % 2 else -1, f"t{sec}-{k}")
            events.append((ms, "trade", trade))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


@pytest.mark.slow
async def test_book_features_are_identical_live_and_offline(
    fake: FakeBybit, tmp_path: Path
) -> None:
    seconds = 150
    events = exchange_script(seconds)
    first, *rest = events
    assert first[1] == "book"
    fake.push_book("BTCUSDT", *first[2], ts_ms=first[0])  # type: ignore[misc]

    # ---- live: the real client, the feed's book, the live bar builder and the live join ----
    snaps: list[BookSnapshot] = []
    feed = BybitFeed(config(fake, book_levels=20), on_book=snaps.append)
    builder = BarBuilder()
    bars: list[Bar] = []
    n_trades = sum(1 for e in rest if e[1] == "trade")
    seen = 0

    async def consume() -> None:
        nonlocal seen
        async for batch in feed:
            seen += len(batch)
            builder.add_many(
                [t.ts for t in batch],
                [t.price for t in batch],
                [t.size for t in batch],
                [t.side for t in batch],
                bars,
            )

    task = asyncio.create_task(consume())
    try:
        await asyncio.to_thread(fake.wait_subscribed, BOOK_TOPIC)
        await asyncio.to_thread(fake.wait_subscribed, "publicTrade.BTCUSDT")
        for ts, kind, payload in rest:
            if kind == "book":
                bids, asks = payload  # type: ignore[misc]
                await asyncio.to_thread(fake.push_book, "BTCUSDT", bids, asks, ts_ms=ts)
            else:
                await asyncio.to_thread(fake.push_trades, "BTCUSDT", [payload])  # type: ignore[list-item]
        last_u = fake.book("BTCUSDT").u
        await until(
            lambda: seen == n_trades and feed.book is not None and feed.book.book.u == last_u
        )
    finally:
        await feed.close()
        await asyncio.gather(task, return_exceptions=True)
    assert feed.book is not None
    feed.book.sampler.flush()
    bars.extend(builder.flush())
    assert feed.stats["book_gaps"] == 0
    join = LiveBookBars()
    for snap in snaps:
        join.add(snap)
    live = pd.DataFrame([join.bar(b) for b in bars])

    # ---- offline: the recorded wire messages → replay → lake → loader --------------------
    recorded = list(fake.book_log)
    replayed = replay_book_messages(recorded, "BTCUSDT", 20)
    assert replayed == snaps  # the same states, published at the same seconds
    lake = Lake(tmp_path / "lake")
    lake.write_trades("BTCUSDT", trades_from_records([e[2] for e in rest if e[1] == "trade"]))  # type: ignore[misc]
    lake.append_book("BTCUSDT", book_frame(replayed, 20))
    offline_bars = lake.read_bars("BTCUSDT")
    ts_ms, rows = book_states(lake.read_book("BTCUSDT"))
    first_s = int(offline_bars["ts"].iloc[0]) // 10**9
    per_second = model_book.per_second(ts_ms, rows, first_s, len(offline_bars))
    offline = model_book.attach_book(offline_bars, per_second)
    pd.testing.assert_frame_equal(lake_book_bars(lake, "BTCUSDT"), offline)
    mid = int(offline["ts"].iloc[70])  # a window: states before it forward-fill into it
    window = lake_book_bars(lake, "BTCUSDT", mid, None)
    pd.testing.assert_frame_equal(window, offline.iloc[70:].reset_index(drop=True))

    assert live["ts"].tolist() == offline["ts"].tolist()
    assert len(live) >= seconds - 5
    spec = FeatureSpec(book=True)
    f_live = compute_features(live, spec)
    f_off = compute_features(offline, spec)
    book_cols = [spec.names.index(n) for n in BOOK_FEATURES]
    assert np.isfinite(f_live[spec.lookback + 20 :, book_cols]).all()
    assert np.array_equal(f_live[:, book_cols], f_off[:, book_cols], equal_nan=True)
    assert np.array_equal(f_live, f_off, equal_nan=True)  # exact sizes: trade features too


async def test_recorder_writes_book_snapshots_next_to_trades(
    fake: FakeBybit, tmp_path: Path
) -> None:
    changes = list(random_book_changes(2, 30, T0))
    fake.push_book("BTCUSDT", *changes[0][1:], ts_ms=changes[0][0])
    lake = Lake(tmp_path / "lake")

    async def exchange() -> None:
        await asyncio.to_thread(fake.wait_subscribed, BOOK_TOPIC)
        for ts, bids, asks in changes[1:]:
            await asyncio.to_thread(fake.push_book, "BTCUSDT", bids, asks, ts_ms=ts)
        trade = Trade((T0 + 500) * 10**6, 65_000.0, 0.5, 1, "r1")
        await asyncio.to_thread(fake.push_trades, "BTCUSDT", [trade])

    pusher = asyncio.create_task(exchange())
    result = await record_live(lake, config(fake, book_levels=10), seconds=4.0, part_books=10)
    await pusher
    expected = replay_book_messages(fake.book_log, "BTCUSDT", 10)
    assert result.trades == 1 and result.book_gaps == 0
    assert result.book_snapshots == len(expected) >= 25 and result.book_parts >= 3
    back = lake.read_book("BTCUSDT")
    assert back["ts"].tolist() == [s.ts for s in expected]
    assert np.array_equal(back.to_numpy(), book_frame(expected, 10).to_numpy(), equal_nan=True)
