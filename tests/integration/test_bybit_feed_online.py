"""Against the real Bybit mainnet public stream (marker ``online``: never in CI, needs internet)."""

from __future__ import annotations

import asyncio

import pytest
from cryptoarena.data.bybit_feed import BybitFeed, BybitFeedConfig


@pytest.mark.online
async def test_real_public_trades_arrive() -> None:
    feed = BybitFeed(BybitFeedConfig(symbol="BTCUSDT"))
    got = []
    async with asyncio.timeout(60):
        async for batch in feed:
            got.extend(batch)
            if len(got) >= 5:
                break
    await feed.close()
    assert all(t.symbol == "BTCUSDT" and t.price > 0 and t.size > 0 for t in got)
    assert [t.ts for t in got] == sorted(t.ts for t in got)
    assert len({t.trade_id for t in got}) == len(got)
