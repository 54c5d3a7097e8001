"""A fake Bybit v5 server on 127.0.0.1 that speaks the real wire format, for the real pybit client.

``FakeBybit`` runs an aiohttp app in a background thread with its own event loop. The base serves
the public WebSocket (/v5/public/linear and /v5/public/spot: subscribe/unsubscribe acks echoing
``req_id``, ``{"op":"ping"}`` pongs, protocol ping/pong, publicTrade pushes, orderbook.{depth}
snapshot on subscription then deltas: :meth:`push_book`) and
GET /v5/market/recent-trade from the trades it pushed. Other modules add REST routes, the private
WebSocket or a matching engine as plugins: callables ``(app, fake) -> None`` run before start.

Fault switches (in :class:`tests.fakes.bybit_faults.FaultSwitches`): :meth:`drop` (abrupt TCP
close or a graceful close frame), :meth:`down` (refuse connections for N seconds: the listening
socket is really closed), :meth:`reject_topic` (subscription answered ``success: false``),
``answer_pings`` (stop answering protocol pings), ``mute`` (read frames, answer nothing) and
:meth:`silence` (mute only the connections open now), :meth:`stall_recent_trades` (a slow REST
backfill, answered on :meth:`answer_recent_trades`), ``lose_book_deltas`` (the next N book deltas
are applied on the exchange but never sent: the client sees a ``u`` gap), ``withhold_book_snapshots``
(the next N orderbook subscriptions get no snapshot), :meth:`restart_book`
(the whole book pushed again with ``u == 1``).

    with FakeBybit() as fake:
        ws = FeedWebSocket("linear", base_url=fake.http_url, testnet=False)  # cryptoarena.data.bybit_ws
        fake.wait_subscribed("publicTrade.BTCUSDT")
        fake.push_trades("BTCUSDT", trades)
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from cryptoarena.data.records import Trade

from tests.fakes import bybit_wire as wire
from tests.fakes.bybit_book import ExchangeBook, Level
from tests.fakes.bybit_faults import FaultSwitches

logger = logging.getLogger(__name__)

Plugin = Callable[[web.Application, "FakeBybit"], None]
PUBLIC_CHANNELS = ("linear", "spot")
HISTORY_LIMIT = 5000  # trades kept per (channel, symbol) for the recent-trade endpoint


@dataclass(eq=False)
class PublicConn:
    """One client connection to the public WebSocket."""

    ws: web.WebSocketResponse
    transport: Any
    channel: str
    conn_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    topics: set[str] = field(default_factory=set)
    muted: bool = False  # this connection gets no answers at all
    received: list[dict[str, Any]] = field(default_factory=list)  # client frames, in order


class FakeBybit(FaultSwitches):
    def __init__(
        self, plugins: Iterable[Plugin] = (), *, ack_delay_s: float = 0.01, host: str = "127.0.0.1"
    ) -> None:
        self.host = host
        self.port = 0
        # Delaying acks a little avoids pybit's subscribe-ack race (reference §6.3) without hiding it.
        self.ack_delay_s = ack_delay_s
        self.answer_pings = True
        self.mute = False  # connections stay open but get no answers at all (a silent socket)
        self.rejected_topics: set[str] = set()
        self.state: dict[str, Any] = {}  # free room for plugins
        self.conns: set[PublicConn] = set()
        self.stats: collections.Counter[str] = collections.Counter()
        self.history: dict[tuple[str, str], collections.deque[dict[str, Any]]] = {}
        self.books: dict[tuple[str, str], ExchangeBook] = {}  # (channel, symbol) → book
        self.lose_book_deltas = 0
        self.withhold_book_snapshots = 0  # the next N subscriptions get no snapshot
        self.book_log: list[dict[str, Any]] = []  # every book message sent, in order (a recording)
        self._seq = 0
        self._last: dict[tuple[str, str], tuple[float, str]] = {}
        self.app = web.Application()
        self.app.router.add_get("/v5/public/{channel}", self._public_ws)
        self.app.router.add_get("/v5/market/recent-trade", self._recent_trade)
        for plugin in plugins:
            plugin(self.app, self)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-bybit", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._down_handle: asyncio.TimerHandle | None = None
        self._recent_trade_gate: asyncio.Event | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeBybit:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._site = site  # only now: is_down must not turn False before the port listens
        server = site._server
        assert server is not None and hasattr(server, "sockets")
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.call(self._stop(), timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    async def _stop(self) -> None:
        for conn in list(self.conns):
            conn.transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> FakeBybit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ws_url(self, path: str = "/v5/public/linear") -> str:
        return f"ws://{self.host}:{self.port}/{path.lstrip('/')}"

    def call(self, target: Awaitable[Any] | Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run a coroutine or a plain callable on the server loop (from any thread); its result."""

        async def run() -> Any:
            result = target() if callable(target) else await target
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    # ---- public WebSocket ------------------------------------------------------------------
    async def _public_ws(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        if channel not in PUBLIC_CHANNELS:
            raise web.HTTPNotFound(text=f"no public channel {channel!r} in the fake")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = PublicConn(ws, request.transport, channel)
        self.conns.add(conn)
        self.stats["connections"] += 1
        try:
            async for msg in ws:
                if self.mute or conn.muted:
                    continue
                if msg.type == WSMsgType.PING:
                    if self.answer_pings:
                        await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await self._on_frame(conn, msg.data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.conns.discard(conn)
        return ws

    async def _on_frame(self, conn: PublicConn, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            logger.info("fake bybit: not JSON: %r", text[:80])
            return
        conn.received.append(frame)
        op, req_id = frame.get("op"), str(frame.get("req_id", ""))
        if op == "ping":
            await self._send(conn, wire.public_pong(req_id, conn.conn_id))
        elif op in ("subscribe", "unsubscribe"):
            topics = [str(t) for t in frame.get("args") or []]
            if self.ack_delay_s:
                await asyncio.sleep(self.ack_delay_s)
            bad = [t for t in topics if t in self.rejected_topics]
            if op == "subscribe" and bad:
                self.stats["rejected"] += 1
                msg = f"error:handler not found,topic:{bad[0]}"
                await self._send(
                    conn, wire.ack(conn.channel, op, req_id, conn.conn_id, ok=False, msg=msg)
                )
                return
            if op == "subscribe":
                conn.topics.update(topics)
            else:
                conn.topics.difference_update(topics)
            self.stats[op] += 1
            await self._send(conn, wire.ack(conn.channel, op, req_id, conn.conn_id))
            if op == "subscribe":  # an orderbook subscription starts with a snapshot
                for topic in topics:
                    if topic.startswith("orderbook."):
                        if self.withhold_book_snapshots > 0:
                            self.withhold_book_snapshots -= 1
                            continue
                        _, depth, symbol = topic.split(".", 2)
                        snapshot = self.book(symbol, conn.channel).snapshot(int(depth))
                        self.book_log.append(snapshot)
                        await self._send(conn, snapshot)

    async def _send(self, conn: PublicConn, message: dict[str, Any]) -> bool:
        try:
            await conn.ws.send_str(json.dumps(message))
            return True
        except (ConnectionResetError, RuntimeError):
            self.conns.discard(conn)
            return False

    def subscribers(self, topic: str, channel: str = "linear") -> int:
        return sum(1 for c in list(self.conns) if c.channel == channel and topic in c.topics)

    def wait_subscribed(
        self, topic: str, channel: str = "linear", *, count: int = 1, timeout: float = 10.0
    ) -> None:
        """Block the calling (test) thread until ``count`` connections subscribe to ``topic``."""
        deadline = time.monotonic() + timeout
        while self.subscribers(topic, channel) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no subscriber to {topic} on {channel} after {timeout}s")
            time.sleep(0.01)

    def publish(self, channel: str, message: dict[str, Any]) -> int:
        """Send a topic message to every connection subscribed to it; how many got it."""

        async def send() -> int:
            targets = [
                c for c in self.conns if c.channel == channel and message["topic"] in c.topics
            ]
            sent = await asyncio.gather(*(self._send(c, message) for c in targets))
            return sum(sent)

        result: int = self.call(send())
        return result

    def push_trades(
        self, symbol: str, trades: Sequence[Trade | dict[str, Any]], channel: str = "linear"
    ) -> int:
        """Trades happen on the exchange: kept for recent-trade, pushed to publicTrade subscribers.

        Returns how many connections the message reached (0 while nobody is connected)."""
        key = (channel, symbol)
        last_price, last_dir = self._last.get(key, (None, "ZeroPlusTick"))
        items = []
        for trade in trades:
            self._seq += 1
            price = trade.price if isinstance(trade, Trade) else float(trade["p"])
            tick = wire.tick_direction(price, last_price, last_dir)
            items.append(
                wire.trade_item(trade, seq=self._seq, symbol=symbol, channel=channel, tick=tick)
            )
            last_price, last_dir = price, tick
        self._last[key] = (last_price, last_dir)  # type: ignore[assignment]
        self.history.setdefault(key, collections.deque(maxlen=HISTORY_LIMIT)).extend(items)
        self.stats["trades_pushed"] += len(items)
        return self.publish(channel, wire.public_trade_message(symbol, items))

    # ---- order book ------------------------------------------------------------------------
    def book(self, symbol: str, channel: str = "linear") -> ExchangeBook:
        return self.books.setdefault((channel, symbol), ExchangeBook(symbol))

    def push_book(
        self,
        symbol: str,
        bids: list[Level],
        asks: list[Level],
        *,
        ts_ms: int | None = None,
        depth: int = 50,
        channel: str = "linear",
    ) -> int:
        """A book change on the exchange, pushed as a delta to ``orderbook.<depth>`` subscribers
        (unless ``lose_book_deltas`` swallows it). Returns how many connections got it."""

        async def change() -> dict[str, Any] | None:
            message = self.book(symbol, channel).change(depth, bids, asks, ts_ms)
            if self.lose_book_deltas > 0:
                self.lose_book_deltas -= 1
                self.stats["book_deltas_lost"] += 1
                return None
            self.book_log.append(message)
            return message

        message = self.call(change())
        return 0 if message is None else self.publish(channel, message)

    def push_book_snapshot(
        self, symbol: str, *, ts_ms: int | None = None, depth: int = 50, channel: str = "linear"
    ) -> int:
        """Send the whole book again as a snapshot (Bybit does so at times, and after a restart)."""

        async def snap() -> dict[str, Any]:
            message = self.book(symbol, channel).snapshot(depth, ts_ms)
            self.book_log.append(message)
            return message

        message: dict[str, Any] = self.call(snap())
        return self.publish(channel, message)

    def restart_book(
        self, symbol: str, *, ts_ms: int | None = None, depth: int = 50, channel: str = "linear"
    ) -> int:
        """The book service restarts: the whole book is pushed with ``u == 1``."""

        async def restart() -> dict[str, Any]:
            message = self.book(symbol, channel).restart(depth, ts_ms)
            self.book_log.append(message)
            return message

        message: dict[str, Any] = self.call(restart())
        return self.publish(channel, message)

    # ---- REST: recent trades (public) --------------------------------------------------------
    async def _recent_trade(self, request: web.Request) -> web.Response:
        self.stats["recent_trade_asked"] += 1
        if self._recent_trade_gate is not None:
            await self._recent_trade_gate.wait()
        q = request.query
        category, symbol = q.get("category", ""), q.get("symbol", "")
        if category not in PUBLIC_CHANNELS or not symbol:
            return web.json_response(
                wire.envelope(code=10001, msg="params error: category or symbol")
            )
        cap = 60 if category == "spot" else 1000
        try:
            limit = int(q.get("limit", 60 if category == "spot" else 500))
        except ValueError:
            return web.json_response(wire.envelope(code=10001, msg="params error: limit"))
        limit = max(1, min(limit, cap))
        rows = list(self.history.get((category, symbol), ()))[-limit:]
        self.stats["recent_trade"] += 1
        listing = [wire.recent_trade_row(item) for item in reversed(rows)]  # newest first
        return web.json_response(wire.envelope({"category": category, "list": listing}))
