"""pybit public WebSocket and REST, hardened for a supervisor (see shared reference §1.2 and §6).

pybit opens its connection inside ``WebSocket.__init__`` and has no URL argument, so
:class:`FeedWebSocket` swaps scheme and host in ``_connect`` (the path pybit builds is kept). It
never lets an exception escape into pybit's reader thread (an exception there kills the socket for
good), records when the last frame arrived, and hands subscription acks to the owner instead of
pybit's own bookkeeping (which races a fast server and crashes on a rejected subscription).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cryptoarena.data.records import BUY, SELL, Trade
from pybit.unified_trading import HTTP, WebSocket

logger = logging.getLogger(__name__)

T = TypeVar("T")


def ws_base(url: str | None) -> str | None:
    """Scheme and host of an override (``http://h:p`` becomes ``ws://h:p``; a path is ignored)."""
    if not url:
        return None
    found = re.match(r"^(wss?|https?)://([^/]+)", url.strip())
    if not found:
        raise ValueError(f"not a ws:// or http:// URL: {url!r}")
    scheme = {"http": "ws", "https": "wss"}.get(found.group(1), found.group(1))
    return f"{scheme}://{found.group(2)}"


class FeedWebSocket(WebSocket):
    """pybit's public ``WebSocket`` with a base-URL override, liveness stamps and safe acks."""

    def __init__(
        self,
        channel_type: str,
        *,
        base_url: str | None = None,
        on_ack: Callable[[dict[str, Any]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self._base_url = ws_base(base_url)
        self._on_ack = on_ack
        self.last_message_ns = time.time_ns()
        super().__init__(channel_type, **kwargs)

    def _connect(self, url: str) -> None:
        # url is pybit's template on the first connect and the formatted endpoint afterwards.
        if self._base_url:
            url = re.sub(r"^wss?://[^/]+", self._base_url, url)
        super()._connect(url)

    def _on_message(self, message: Any) -> None:
        self.last_message_ns = time.time_ns()
        try:
            super()._on_message(message)
        except Exception:  # never let pybit's reader thread die (reference §6.2)
            logger.exception("bybit ws: message handling failed: %.200r", message)

    def _on_pong(self) -> None:
        self.last_message_ns = time.time_ns()
        super()._on_pong()

    def _process_subscription_message(self, message: dict[str, Any]) -> None:
        if self._on_ack is not None:
            self._on_ack(message)

    def _process_normal_message(self, message: dict[str, Any]) -> None:
        # pybit keeps its own orderbook copy (no sequence check, unsorted inserts, a deep copy per
        # message, deltas relabelled as snapshots): orderbook messages go to the callback raw.
        topic = message.get("topic", "")
        if topic.startswith("orderbook."):
            self._get_callback(topic)(message)
            return
        super()._process_normal_message(message)

    def resubscribe(self, topic: str) -> None:
        """Unsubscribe and subscribe ``topic`` again on this socket (a fresh orderbook snapshot).
        Raw frames without ``req_id``: pybit's bookkeeping and callbacks stay as they are."""
        if self.dead:
            raise ConnectionError("socket closed")
        self.ws.send(json.dumps({"op": "unsubscribe", "args": [topic]}))
        self.ws.send(json.dumps({"op": "subscribe", "args": [topic]}))

    @property
    def dead(self) -> bool:
        return bool(self.exited) or not self.is_connected()


def parse_recent_trades(result: dict[str, Any], symbol: str) -> list[Trade]:
    """Rows of GET /v5/market/recent-trade (``result``) → trades, oldest first."""
    trades = [
        Trade(
            ts=int(row["time"]) * 1_000_000,
            price=float(row["price"]),
            size=float(row["size"]),
            side=BUY if row["side"] == "Buy" else SELL,
            trade_id=str(row["execId"]),
            symbol=str(row.get("symbol", symbol)),
        )
        for row in reversed(result.get("list") or [])
    ]
    # Bybit lists newest first; the docs promise no order, so sort (stable) by time, then seq.
    seqs = [int(row.get("seq") or 0) for row in reversed(result.get("list") or [])]
    order = sorted(range(len(trades)), key=lambda i: (trades[i].ts, seqs[i]))
    return [trades[i] for i in order]


def public_http(*, testnet: bool, rest_url: str | None, timeout_s: float) -> HTTP:
    """An unsigned pybit session on the venue of the stream: testnet's REST for a testnet
    stream, mainnet's otherwise (demo accounts read mainnet market data, reference §4), or the
    override. Never mainnet trades merged into a testnet stream."""
    session = HTTP(testnet=testnet, timeout=timeout_s, max_retries=1, retry_delay=0)
    if rest_url:
        session.endpoint = rest_url.rstrip("/")
    return session


def fetch_recent_trades(
    rest_url: str | None,
    category: str,
    symbol: str,
    limit: int,
    timeout_s: float,
    *,
    testnet: bool,
) -> list[Trade]:
    """The exchange's latest public trades over REST (blocking; run it off the event loop)."""
    session = public_http(testnet=testnet, rest_url=rest_url, timeout_s=timeout_s)
    response = session.get_public_trade_history(category=category, symbol=symbol, limit=limit)
    return parse_recent_trades(response.get("result") or {}, symbol)


async def in_daemon_thread(
    fn: Callable[[], T],
    timeout_s: float,
    name: str,
    *,
    on_late: Callable[[T], Any] | None = None,
) -> T:
    """Run blocking ``fn`` on a fresh daemon thread and await it with a timeout.

    Not ``asyncio.to_thread``: pybit calls can hang forever (reference §6.4), and a hung executor
    thread would block interpreter exit; a daemon thread is simply abandoned. A result that
    arrives after the timeout goes to ``on_late`` (e.g. close a socket nobody will use)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            if ok and on_late is not None:
                threading.Thread(
                    target=on_late, args=(value,), name=f"{name}-late", daemon=True
                ).start()
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def run() -> None:
        try:
            outcome: tuple[bool, Any] = (True, fn())
        except BaseException as exc:
            outcome = (False, exc)
        # RuntimeError: the loop is gone, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await asyncio.wait_for(future, timeout_s)
