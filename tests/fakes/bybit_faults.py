"""The fake Bybit server's fault switches: drop connections (abruptly or gracefully), go down
for a while (the port really closed), mute open connections, reject a topic. A mixin of
:class:`tests.fakes.bybit_server.FakeBybit` (kept apart for size)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.bybit_server import PublicConn


class FaultSwitches:
    # Set by FakeBybit.__init__.
    conns: set[PublicConn]
    stats: collections.Counter[str]
    rejected_topics: set[str]
    _site: web.TCPSite | None
    _down_handle: asyncio.TimerHandle | None
    _recent_trade_gate: asyncio.Event | None

    def call(self, target: Awaitable[Any] | Callable[[], Any], timeout: float = 10.0) -> Any:
        raise NotImplementedError

    async def _listen(self) -> None:
        raise NotImplementedError

    def drop(self, *, graceful: bool = False, code: int = 1000) -> int:
        """Close every open WebSocket: abruptly (TCP abort) or with a close frame; how many."""

        async def run() -> int:
            conns = list(self.conns)
            for conn in conns:
                if graceful:
                    await conn.ws.close(code=code, message=b"fake bybit: graceful close")
                else:
                    conn.transport.abort()
                self.conns.discard(conn)
            self.stats["graceful_closes" if graceful else "abrupt_drops"] += len(conns)
            return len(conns)

        result: int = self.call(run())
        return result

    def down(self, seconds: float) -> None:
        """Drop every connection and refuse new ones for ``seconds`` (the port is really closed)."""

        async def run() -> None:
            for conn in list(self.conns):
                conn.transport.abort()
            self.conns.clear()
            if self._site is not None:
                await self._site.stop()
                self._site = None
            self.stats["downtimes"] += 1
            loop = asyncio.get_running_loop()
            self._down_handle = loop.call_later(seconds, lambda: loop.create_task(self._listen()))

        self.call(run())

    def up(self) -> None:
        """End a downtime early."""

        async def run() -> None:
            if self._down_handle is not None:
                self._down_handle.cancel()
                self._down_handle = None
            if self._site is None:
                await self._listen()

        self.call(run())

    @property
    def is_down(self) -> bool:
        return self._site is None

    def silence(self) -> int:
        """Mute the public connections open now (new ones are answered): silent sockets."""

        def run() -> int:
            for conn in self.conns:
                conn.muted = True
            return len(self.conns)

        result: int = self.call(run)
        return result

    def reject_topic(self, topic: str) -> None:
        """Answer subscriptions to ``topic`` with ``success: false`` (like an unknown symbol)."""
        self.rejected_topics.add(topic)

    def stall_recent_trades(self) -> None:
        """GET /v5/market/recent-trade waits (a slow REST) until :meth:`answer_recent_trades`;
        the answer then lists the trades as they are at that moment."""

        def run() -> None:
            self._recent_trade_gate = asyncio.Event()

        self.call(run)

    def answer_recent_trades(self) -> None:
        def run() -> None:
            gate, self._recent_trade_gate = self._recent_trade_gate, None
            if gate is not None:
                gate.set()

        self.call(run)
