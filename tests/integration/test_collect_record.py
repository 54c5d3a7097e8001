"""Recording the live stream (real pybit against the fake server) into the lake, then compaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptoarena.data.bybit_feed import BybitFeedConfig
from cryptoarena.data.collect import check_quality, record_live
from cryptoarena.data.lake import Lake
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import Trade
from cryptoarena.data.samples import NAUTILUS_TRADES, sample_path

from tests.fakes.bybit_server import FakeBybit


async def test_record_live_then_compact(tmp_path: Path) -> None:
    frame, _ = load_trades(sample_path(NAUTILUS_TRADES))
    trades = [
        Trade(int(r.ts), float(r.price), float(r.size), int(r.side), str(r.trade_id))
        for r in frame.head(600).itertuples()
    ]
    lake = Lake(tmp_path / "lake")
    with FakeBybit() as fake:
        config = BybitFeedConfig(ws_url=fake.ws_url(), rest_url=fake.http_url, check_interval_s=0.1)

        async def exchange() -> None:
            await asyncio.to_thread(fake.wait_subscribed, "publicTrade.BTCUSDT")
            for i in range(0, 600, 100):
                await asyncio.to_thread(fake.push_trades, "BTCUSDT", trades[i : i + 100])

        pusher = asyncio.create_task(exchange())
        result = await record_live(lake, config, seconds=4.0, part_trades=250)
        await pusher
    assert result.trades == 600 and result.parts == 2 and not result.gaps  # spilled at 300 and 600
    assert lake.info()[0].pending_parts == 2
    assert len(lake.compact()) == 1
    info = lake.info()[0]
    assert info.pending_parts == 0 and info.trades == 600
    assert list(lake.read_trades("BTCUSDT")["trade_id"]) == [t.trade_id for t in trades]
    assert check_quality(lake)["errors"] == []
