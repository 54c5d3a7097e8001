"""Small pieces of the Bybit feed: URL overrides, recent-trade parsing, the daemon-thread runner."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from cryptoarena.data.bybit_ws import in_daemon_thread, parse_recent_trades, public_http, ws_base

# GET /v5/market/recent-trade result as documented (reference §3.9), newest first.
RESULT = {
    "category": "linear",
    "list": [
        {
            "execId": "c",
            "symbol": "BTCUSDT",
            "price": "16618.50",
            "size": "0.002",
            "side": "Sell",
            "time": "1672052955759",
            "isBlockTrade": False,
            "isRPITrade": False,
            "seq": "12",
        },
        {
            "execId": "b",
            "symbol": "BTCUSDT",
            "price": "16618.49",
            "size": "0.001",
            "side": "Buy",
            "time": "1672052955758",
            "isBlockTrade": False,
            "isRPITrade": False,
            "seq": "11",
        },
        {
            "execId": "a",
            "symbol": "BTCUSDT",
            "price": "16618.00",
            "size": "0.5",
            "side": "Buy",
            "time": "1672052955758",
            "isBlockTrade": False,
            "isRPITrade": False,
            "seq": "10",
        },
    ],
}


def test_ws_base() -> None:
    assert ws_base("http://127.0.0.1:8080") == "ws://127.0.0.1:8080"
    assert ws_base("https://example.org/v5/x") == "wss://example.org"
    assert ws_base("ws://127.0.0.1:9/v5/public/linear") == "ws://127.0.0.1:9"
    assert ws_base(None) is None
    with pytest.raises(ValueError, match="not a ws"):
        ws_base("ftp://x")


def test_parse_recent_trades_oldest_first() -> None:
    trades = parse_recent_trades(RESULT, "BTCUSDT")
    assert [t.trade_id for t in trades] == ["a", "b", "c"]
    assert trades[0].ts == 1672052955758 * 1_000_000 and trades[0].price == 16618.0
    assert [t.side for t in trades] == [1, 1, -1] and trades[2].size == 0.002
    assert parse_recent_trades({}, "BTCUSDT") == []


async def test_in_daemon_thread_result_error_timeout_and_late_result() -> None:
    assert await in_daemon_thread(lambda: 42, 5, "t") == 42
    with pytest.raises(ZeroDivisionError):
        await in_daemon_thread(lambda: 1 / 0, 5, "t")
    late: list[str] = []
    got = threading.Event()

    def slow() -> str:
        time.sleep(0.3)
        return "socket"

    def on_late(value: str) -> None:
        late.append(value)
        got.set()

    with pytest.raises(TimeoutError):
        await in_daemon_thread(slow, 0.05, "t", on_late=on_late)
    assert await asyncio.to_thread(got.wait, 5)
    assert late == ["socket"]


def test_backfill_reads_the_venue_of_the_stream() -> None:
    """Issue #9.7: a testnet stream was backfilled from mainnet's REST (testnet=False plus a
    hard-coded mainnet endpoint), merging mainnet trades into a testnet stream."""
    assert public_http(testnet=True, rest_url=None, timeout_s=1).endpoint == (
        "https://api-testnet.bybit.com"
    )
    assert public_http(testnet=False, rest_url=None, timeout_s=1).endpoint == (
        "https://api.bybit.com"
    )
    local = public_http(testnet=True, rest_url="http://127.0.0.1:9/", timeout_s=1)
    assert local.endpoint == "http://127.0.0.1:9"
