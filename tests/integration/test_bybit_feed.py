"""BybitFeed with the real pybit client against the fake Bybit server: drops, closes, downtime."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest
from cryptoarena.config import load_settings
from cryptoarena.data.bybit_feed import BybitFeed, BybitFeedConfig, FeedError
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import Trade
from cryptoarena.data.samples import NAUTILUS_TRADES, sample_path

from tests.fakes.bybit_server import FakeBybit

TOPIC = "publicTrade.BTCUSDT"


@pytest.fixture(scope="module")
def real_trades() -> list[Trade]:
    frame, _ = load_trades(sample_path(NAUTILUS_TRADES))
    return [
        Trade(int(r.ts), float(r.price), float(r.size), int(r.side), str(r.trade_id))
        for r in frame.itertuples()
    ]


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
        "backoff_max_s": 1.0,
        "connect_timeout_s": 5.0,
    }
    return BybitFeedConfig(**(base | kw))  # type: ignore[arg-type]


async def wait_subscribed(fake: FakeBybit, timeout: float = 15.0) -> None:
    await asyncio.to_thread(fake.wait_subscribed, TOPIC, timeout=timeout)


def collect(feed: BybitFeed) -> tuple[list[Trade], asyncio.Task[None]]:
    """Start consuming ``feed`` in a task; the list fills as batches arrive."""
    got: list[Trade] = []

    async def consume() -> None:
        async for batch in feed:
            got.extend(batch)

    return got, asyncio.create_task(consume())


async def push(fake: FakeBybit, trades: list[Trade], batch: int = 40) -> int:
    """Push in messages of ``batch``; returns how many trades reached no connection."""
    unseen = 0
    for i in range(0, len(trades), batch):
        part = trades[i : i + batch]
        if await asyncio.to_thread(fake.push_trades, "BTCUSDT", part) == 0:
            unseen += len(part)
    return unseen


@pytest.mark.slow
async def test_every_trade_exactly_once_across_drop_close_and_downtime(
    fake: FakeBybit, real_trades: list[Trade]
) -> None:
    trades = real_trades[:1500]
    chunks = [trades[i : i + 150] for i in range(0, 1500, 150)]  # 10 chunks
    feed = BybitFeed(config(fake))
    got, consumer = collect(feed)
    await wait_subscribed(fake)
    await push(fake, chunks[0])

    fake.drop()  # abrupt TCP close
    # Pushed while (most likely) nobody is connected: only recoverable over REST.
    unseen = [await push(fake, chunks[1])]
    await wait_subscribed(fake)
    await push(fake, chunks[2])

    await asyncio.to_thread(fake.drop, graceful=True)  # close frame 1000
    unseen.append(await push(fake, chunks[3]))
    await wait_subscribed(fake)
    await push(fake, chunks[4])

    down_at = time.time_ns()
    fake.down(5.0)  # connections refused for 5 s
    unseen.append(await push(fake, chunks[5] + chunks[6]))
    assert unseen[2] == 300  # refused connections: nobody can have received these
    await wait_subscribed(fake, timeout=20)
    assert time.time_ns() - down_at >= 5e9
    await push(fake, chunks[7] + chunks[8] + chunks[9])

    deadline = time.monotonic() + 10
    while len(got) < len(trades) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # anything extra (a duplicate) would show up now
    await feed.close()
    await asyncio.wait_for(consumer, 5)

    assert [t.trade_id for t in got] == [t.trade_id for t in trades]  # each once, in order
    assert [t.ts for t in got] == sorted(t.ts for t in got)
    assert feed.stats["reconnects"] == 3
    assert len(feed.gaps) == 3
    assert all(g.complete for g in feed.gaps)
    # Trades pushed while disconnected came back through the REST backfill of their gap (or of
    # the gap before, when that backfill request was answered after they happened).
    report = f"gaps={feed.gaps} unseen={unseen} stats={dict(feed.stats)}"
    recovered = list(itertools.accumulate(g.recovered for g in feed.gaps))
    assert all(r >= n for r, n in zip(recovered, itertools.accumulate(unseen), strict=True)), report
    assert sum(unseen) >= 300
    downtime = feed.gaps[2]
    assert downtime.end_ns - downtime.start_ns >= 5e9
    assert all(g.end_ns - g.start_ns < 5e9 for g in feed.gaps[:2])
    assert feed.stats["connect_failures"] >= 1  # refused while down, then backoff
    assert fake.stats["subscribe"] == 4


async def test_silent_socket_is_replaced(fake: FakeBybit, real_trades: list[Trade]) -> None:
    feed = BybitFeed(config(fake, silence_s=0.8))
    got, consumer = collect(feed)
    await wait_subscribed(fake)
    await push(fake, real_trades[:10])
    assert fake.silence() == 1  # the socket stays open but nothing comes back, not even pongs
    deadline = time.monotonic() + 15
    while not feed.gaps and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await push(fake, real_trades[10:20])  # on the new connection
    while len(got) < 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await feed.close()
    await asyncio.wait_for(consumer, 5)
    assert feed.gaps and feed.gaps[0].reason.startswith("silent")
    assert [t.trade_id for t in got] == [t.trade_id for t in real_trades[:20]]


async def test_rejected_subscription_is_a_clear_error(fake: FakeBybit) -> None:
    fake.reject_topic(TOPIC)
    feed = BybitFeed(config(fake))
    with pytest.raises(FeedError, match="handler not found"):
        async with asyncio.timeout(10):
            async for _ in feed:
                pass
    await feed.close()


def test_config_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_BYBIT__WS_PUBLIC_URL", "ws://127.0.0.1:9")
    monkeypatch.setenv("ARENA_BYBIT__REST_URL", "http://127.0.0.1:9")
    cfg = BybitFeedConfig.from_settings(load_settings(), silence_s=5)
    assert (cfg.symbol, cfg.ws_url, cfg.rest_url, cfg.testnet) == (
        "BTCUSDT",
        "ws://127.0.0.1:9",
        "http://127.0.0.1:9",
        False,
    )
    assert cfg.silence_s == 5
