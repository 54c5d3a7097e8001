"""Live trades from Bybit's public stream (``publicTrade.<symbol>``) with its own supervisor.

pybit's reconnect gives up within milliseconds when the server refuses connections and cannot
notice a silent socket (reference §6.5), so pybit reconnects are switched off and a supervisor
task owns the connection: it watches for a dead or silent socket, tears it down, rebuilds it under
the project's retry policy (:mod:`cryptoarena.retry`: exponential backoff with jitter, for ever),
resubscribes, and backfills the gap from GET /v5/market/recent-trade on the venue of the stream
(testnet's REST for a testnet stream). Live trades of the new connection wait for the backfill at
most ``backfill_wait_s``; a backfill that comes back later is merged as far as time order allows
and the rest reported. Trades are deduplicated by id across reconnects; every reconnect is
reported as a :class:`FeedGap` (``complete`` when the backfill reached back to trades seen before
the gap and nothing had to be dropped).

Opt-in order book (``book_depth`` > 0): ``orderbook.<depth>.<symbol>`` is subscribed on the same
connection and supervisor; its snapshot + delta messages update a local book with sequence checks
(:mod:`cryptoarena.data.book`), and once per exchange second the top ``book_levels`` levels go to
the ``on_book`` callback as a :class:`~cryptoarena.data.book.BookSnapshot`. On a sequence gap the
book is dropped and the topic subscribed again (a fresh snapshot); after a reconnect the book
waits for the new connection's snapshot. Trade-only users see no change.

pybit callbacks only enqueue (``loop.call_soon_threadsafe``); all processing is on the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from cryptoarena.config import BybitEnv, Settings
from cryptoarena.data.book import BookMessageError, BookSnapshot, BybitBookTracker
from cryptoarena.data.bybit_ws import FeedWebSocket, fetch_recent_trades, in_daemon_thread
from cryptoarena.data.feed import LIVE_FEED, FeedGap
from cryptoarena.data.loaders import parse_bybit_public_trade
from cryptoarena.data.records import Trade
from cryptoarena.data.trade_sequencer import TradeSequencer
from cryptoarena.retry import AsyncSleep, RetryPolicy

logger = logging.getLogger(__name__)


class FeedError(RuntimeError):
    """The feed cannot go on (e.g. the exchange rejected the subscription)."""


@dataclass(frozen=True)
class BybitFeedConfig:
    symbol: str = "BTCUSDT"
    channel: str = "linear"
    testnet: bool = False
    ws_url: str | None = None  # scheme+host override (tests, self-hosted fakes)
    rest_url: str | None = None
    silence_s: float = 30.0  # no frame (trade or pong) for this long: the socket is dead
    check_interval_s: float = 0.5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 15.0
    ping_interval_s: int = 10
    ping_timeout_s: int = 5
    backfill_limit: int = 1000
    # After a reconnect, live trades wait at most this long for the gap's REST backfill.
    backfill_wait_s: float = 2.0
    backfill_timeout_s: float = 10.0  # the REST call itself
    remember_ids: int = 200_000
    # Order book: 0 = trades only; else the orderbook.<depth> stream (linear: 1, 50, 200, 1000),
    # published as top-``book_levels`` snapshots once per exchange second.
    book_depth: int = 0
    book_levels: int = 20
    # No valid book for this long (a resync or a new subscription brought no snapshot): ask again.
    book_resync_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.backfill_wait_s <= self.backfill_timeout_s:
            raise ValueError("backfill_wait_s must be between 0 and backfill_timeout_s")
        if self.book_depth not in (0, 1, 25, 50, 100, 200, 1000):
            raise ValueError(f"book_depth must be 0 (off) or a Bybit depth, not {self.book_depth}")
        if self.book_depth and not 1 <= self.book_levels <= self.book_depth:
            raise ValueError("book_levels must be between 1 and book_depth")

    @property
    def reconnect_policy(self) -> RetryPolicy:
        """Reconnects go on until the feed is closed, backing off up to ``backoff_max_s``."""
        return RetryPolicy(
            max_attempts=None,
            initial_s=self.backoff_initial_s,
            max_s=max(self.backoff_initial_s, self.backoff_max_s),
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> BybitFeedConfig:
        # Demo accounts have no public stream: market data comes from mainnet (reference §4).
        base: dict[str, Any] = {
            "symbol": settings.data.symbol,
            "testnet": settings.bybit.env == BybitEnv.TESTNET,
            "ws_url": settings.bybit.ws_public_url,
            "rest_url": settings.bybit.rest_url,
        }
        return cls(**(base | overrides))


class BybitFeed:
    """``async for batch in BybitFeed(config)``: lists of trades in exchange-time order."""

    capabilities = LIVE_FEED

    def __init__(
        self,
        config: BybitFeedConfig | None = None,
        *,
        sleep: AsyncSleep = asyncio.sleep,
        on_book: Callable[[BookSnapshot], None] | None = None,
    ) -> None:
        self.config = config or BybitFeedConfig()
        self._sleep = sleep
        self.symbol = self.config.symbol
        self.stats: collections.Counter[str] = collections.Counter()
        self._sequencer = TradeSequencer(self.config.remember_ids, self.stats)
        self.gaps: list[FeedGap] = self._sequencer.gaps
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ws: FeedWebSocket | None = None
        self._acks: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._on_book = on_book
        self.book: BybitBookTracker | None = None
        if self.config.book_depth:
            self.book = BybitBookTracker(
                self.symbol, self.config.book_levels, self._publish_book, self.stats
            )
        self._book_gen = 0  # connection whose book messages are current
        self._book_waiting: float | None = None  # monotonic time the book became invalid
        self._closing = False
        self._gen = 0  # connection generation
        self._backfills: set[asyncio.Task[None]] = set()

    @property
    def topic(self) -> str:
        return f"publicTrade.{self.symbol}"

    @property
    def book_topic(self) -> str | None:
        return f"orderbook.{self.config.book_depth}.{self.symbol}" if self.book else None

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._supervisor is None:
            self._loop = asyncio.get_running_loop()
            self._supervisor = asyncio.create_task(self._supervise(), name="bybit-feed")

    async def close(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        for task in list(self._backfills):
            task.cancel()
        await asyncio.gather(*self._backfills, return_exceptions=True)
        await self._teardown()
        self._queue.put_nowait(("closed",))

    async def __aenter__(self) -> BybitFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def __aiter__(self) -> AsyncIterator[list[Trade]]:
        await self.start()
        while True:
            item = await self._queue.get()
            kind = item[0]
            if kind == "closed":
                return
            if kind == "error":
                raise item[1]
            batch = self._handle(item)
            if batch:
                yield batch

    # ---- pybit threads: enqueue only ---------------------------------------------------------
    def _post(self, item: tuple[Any, ...]) -> None:
        try:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except Exception:  # a closed loop must not kill pybit's thread
            logger.debug("bybit feed: dropped a message after close")

    def _on_ack(self, gen: int, message: dict[str, Any]) -> None:
        def settle() -> None:
            queue = self._acks.get(gen)
            if queue is not None:  # acks of later resubscriptions are not waited for
                queue.put_nowait(message)

        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(settle)

    # ---- supervisor ---------------------------------------------------------------------------
    async def _supervise(self) -> None:
        gap: tuple[int, str] | None = None  # (start_ns, reason) of an open gap
        try:
            while not self._closing:
                await self._reconnect(recovering=gap is not None)
                if gap is not None:
                    await self._backfill(self._gen, *gap)
                    gap = None
                reason = await self._watch()
                if self._closing:  # not only cancelled: 3.11's wait_for can swallow a cancel
                    break
                gap = (self._ws.last_message_ns if self._ws else time.time_ns(), reason)
                logger.warning("bybit feed: %s; reconnecting", reason)
                self.stats["reconnects"] += 1
                await self._teardown()
        except FeedError as exc:
            self._queue.put_nowait(("error", exc))
        except asyncio.CancelledError:
            pass

    async def _reconnect(self, *, recovering: bool) -> None:
        """Connect and subscribe, retrying under the reconnect policy until it works; a
        :class:`FeedError` (the exchange refused the subscription) is final."""
        retrying = self.config.reconnect_policy.async_retrying(
            lambda exc: not isinstance(exc, FeedError),
            sleep=self._sleep,
            what="bybit feed connect",
        )
        async for attempt in retrying:
            if self._closing:  # a close whose cancel was swallowed: stop retrying
                return
            with attempt:
                self._gen += 1
                try:
                    await self._connect(self._gen, recovering=recovering)
                except FeedError:
                    raise
                except Exception:
                    self.stats["connect_failures"] += 1
                    await self._teardown()
                    if recovering:  # never leave this connection's trades held
                        self._queue.put_nowait(("release", self._gen))
                    raise

    async def _connect(self, gen: int, *, recovering: bool) -> None:
        cfg = self.config

        def build() -> FeedWebSocket:
            return FeedWebSocket(
                cfg.channel,
                base_url=cfg.ws_url,
                on_ack=lambda msg: self._on_ack(gen, msg),
                testnet=cfg.testnet,
                # pybit must not reconnect by itself; retries=2 is one attempt (reference §6.5).
                restart_on_error=False,
                retries=2,
                ping_interval=cfg.ping_interval_s,
                ping_timeout=cfg.ping_timeout_s,
            )

        ws = await in_daemon_thread(
            build, cfg.connect_timeout_s, "bybit-connect", on_late=lambda late: late.exit()
        )
        self._ws = ws
        if recovering:  # hold this connection's trades until the backfill is merged in
            self._queue.put_nowait(("hold", gen))
        acks = self._acks[gen] = asyncio.Queue()
        if self.book is not None:  # a new connection starts from its own snapshot
            self._queue.put_nowait(("book_restart", gen))

        def on_trades(message: dict[str, Any]) -> None:
            self._post(("trades", gen, message))

        def on_book(message: dict[str, Any]) -> None:
            self._post(("book", gen, message))

        def subscribe() -> None:
            if ws.dead:  # pybit's subscribe() would wait forever on a dead socket (§6.4)
                raise ConnectionError("socket closed before subscribing")
            ws.trade_stream(symbol=self.symbol, callback=on_trades)
            if cfg.book_depth:
                ws.orderbook_stream(depth=cfg.book_depth, symbol=self.symbol, callback=on_book)

        topics = [self.topic] + ([self.book_topic] if self.book_topic else [])
        try:
            await in_daemon_thread(subscribe, cfg.connect_timeout_s, "bybit-subscribe")
            for _ in topics:  # one ack per subscribe frame
                reply = await asyncio.wait_for(acks.get(), cfg.connect_timeout_s)
                if not reply.get("success"):
                    raise FeedError(f"Bybit refused {' + '.join(topics)}: {reply.get('ret_msg')}")
        finally:
            self._acks.pop(gen, None)
        self.stats["connections"] += 1
        logger.info("bybit feed: subscribed %s (connection %d)", ", ".join(topics), gen)

    async def _watch(self) -> str:
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.check_interval_s)
            if self._closing:
                return "closing"
            ws = self._ws
            if ws is None or ws.dead:
                return "socket closed"
            silent = (time.time_ns() - ws.last_message_ns) / 1e9
            if silent > cfg.silence_s:
                return f"silent for {silent:.1f} s"
            self._book_watchdog()

    async def _teardown(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                await in_daemon_thread(ws.exit, 5.0, "bybit-exit")
            except Exception as exc:  # a socket that will not close is abandoned
                logger.debug("bybit feed: exit failed: %s", exc)

    async def _backfill(self, gen: int, start_ns: int, reason: str) -> None:
        """Ask REST for the gap's trades; hold connection ``gen``'s live trades for at most
        ``backfill_wait_s``, then let them through and merge the backfill whenever it comes."""
        end_ns = time.time_ns()
        task = asyncio.create_task(self._fetch_backfill(gen, start_ns, end_ns, reason))
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)
        done, _ = await asyncio.wait({task}, timeout=self.config.backfill_wait_s)
        if not done:
            self.stats["backfills_late"] += 1
            logger.warning(
                "bybit feed: no backfill after %.1f s; live trades go on without waiting",
                self.config.backfill_wait_s,
            )
            self._queue.put_nowait(("release", gen))

    async def _fetch_backfill(self, gen: int, start_ns: int, end_ns: int, reason: str) -> None:
        cfg = self.config
        trades: list[Trade] | None
        try:
            trades = await in_daemon_thread(
                lambda: fetch_recent_trades(
                    cfg.rest_url,
                    cfg.channel,
                    self.symbol,
                    cfg.backfill_limit,
                    cfg.backfill_timeout_s,
                    testnet=cfg.testnet,
                ),
                cfg.backfill_timeout_s + 5.0,
                "bybit-backfill",
            )
        except Exception as exc:
            logger.warning("bybit feed: backfill failed: %s", exc)
            self.stats["backfills_failed"] += 1
            trades = None
        self._queue.put_nowait(("backfill", gen, trades, start_ns, end_ns, reason))

    # ---- event-loop side: parse, then dedupe, order and gaps (TradeSequencer) ---------------
    def _handle(self, item: tuple[Any, ...]) -> list[Trade]:
        kind, gen = item[0], item[1]
        if kind in ("book", "book_restart"):
            self._handle_book(kind, gen, item)
            return []
        if kind == "hold":
            self._sequencer.hold(gen)
            return []
        if kind == "release":
            return self._sequencer.release(gen)
        if kind == "trades":
            try:
                trades = parse_bybit_public_trade(item[2])
            except (ValueError, KeyError, TypeError) as exc:
                self.stats["bad_messages"] += 1
                logger.warning("bybit feed: bad message: %s", exc)
                return []
            return self._sequencer.trades(gen, trades)
        _, gen, recovered, start_ns, end_ns, reason = item
        out = self._sequencer.backfill(gen, recovered or [], start_ns, end_ns, reason)
        self._gap_reported(self.gaps[-1])
        return out

    def _handle_book(self, kind: str, gen: int, item: tuple[Any, ...]) -> None:
        book = self.book
        assert book is not None
        if kind == "book_restart":
            book.restart()
            self._book_gen = gen
            self._book_waiting = time.monotonic()
            return
        if gen != self._book_gen:  # a late message of a closed connection
            return
        gaps = self.stats["book_gaps"]
        try:
            book.on_message(item[2])
        except BookMessageError as exc:  # the book may be wrong from here on: start again
            self.stats["bad_messages"] += 1
            logger.warning("bybit feed: bad orderbook message: %s", exc)
            book.restart()
            self._book_waiting = time.monotonic()
            self._resync_book(gen)
            return
        if self.stats["book_gaps"] > gaps:
            self._resync_book(gen)
        if book.book.valid:
            self._book_waiting = None
        elif self._book_waiting is None:
            self._book_waiting = time.monotonic()

    def _book_watchdog(self) -> None:
        """A book without a snapshot for ``book_resync_s`` (the answer to a resync was lost, or
        the exchange kept the old subscription): subscribe again."""
        since = self._book_waiting
        if since is not None and time.monotonic() - since > self.config.book_resync_s:
            self._book_waiting = time.monotonic()
            logger.warning(
                "bybit feed: no book snapshot for %.1f s; resync", time.monotonic() - since
            )
            self._resync_book(self._gen)

    def _resync_book(self, gen: int) -> None:
        """Subscribe the book topic again on the live connection: the server answers with a
        snapshot. If the socket is gone, the reconnect brings a snapshot anyway."""
        ws, topic = self._ws, self.book_topic
        if ws is None or topic is None or gen != self._gen:
            return
        self.stats["book_resyncs"] += 1
        task = asyncio.create_task(
            in_daemon_thread(lambda: ws.resubscribe(topic), 5.0, "bybit-book-resync")
        )
        self._backfills.add(task)
        task.add_done_callback(self._resync_done)

    def _resync_done(self, task: asyncio.Task[None]) -> None:
        self._backfills.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("bybit feed: book resync failed: %s", task.exception())

    def _publish_book(self, snapshot: BookSnapshot) -> None:
        self.stats["book_snapshots_out"] += 1
        if self._on_book is not None:
            try:
                self._on_book(snapshot)
            except Exception:  # a consumer's bug must not stop the trade feed
                logger.exception("bybit feed: on_book callback failed")

    def _gap_reported(self, gap: FeedGap) -> None:
        """Tell the operator (alerts are queued off the event loop; never raises)."""
        from cryptoarena import alerts

        alerts.feed_gap(self.symbol, gap)
