"""Bybit's private WebSocket (order, execution, position, wallet) under our own supervisor.

pybit's socket dies silently in several ways (reference §6): an exception in a callback, a
failed auth, reconnect attempts exhausted in milliseconds. So: raw messages only
(``callback_function``), callbacks that just hand the message to the event loop, pybit's own
reconnect off, and a supervisor task that rebuilds the socket with exponential backoff and then
calls ``on_gap`` so the exchange re-syncs over REST what it may have missed. Reconnects follow the
project's retry policy (:mod:`cryptoarena.retry`: exponential backoff with jitter, until closed);
a failed authentication is final.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cryptoarena.config import BybitEnv
from cryptoarena.data.bybit_ws import in_daemon_thread, ws_base
from cryptoarena.retry import AsyncSleep, RetryPolicy, retry_async
from cryptoarena.trading.exchange.errors import AuthenticationError, ExchangeError
from pybit.unified_trading import WebSocket

logger = logging.getLogger(__name__)

TOPICS = ("order", "execution", "position", "wallet")


class _PrivateWebSocket(WebSocket):
    """pybit's private socket, optionally pointed at another host (reference §1.2)."""

    def __init__(self, url: str | None, **kwargs: Any) -> None:
        self._base_url = ws_base(url)  # scheme and host only; pybit's /v5/private path is kept
        super().__init__("private", **kwargs)

    def _connect(self, url: str) -> None:
        # url is pybit's template on the first connect and the formatted endpoint afterwards.
        if self._base_url:
            url = re.sub(r"^wss?://[^/]+", self._base_url, url)
        super()._connect(url)


class PrivateStream:
    def __init__(
        self,
        *,
        env: BybitEnv,
        api_key: str,
        api_secret: str,
        url: str | None,
        on_message: Callable[[dict[str, Any]], None],
        on_gap: Callable[[int], Awaitable[None]],
        auth_expire_s: int = 10,
        ping_interval_s: int = 20,
        ping_timeout_s: int = 10,
        check_interval_s: float = 2.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        ready_timeout_s: float = 10.0,
        sleep: AsyncSleep = asyncio.sleep,
    ) -> None:
        self.env = env
        self._key = api_key
        self._secret = api_secret
        self.url = url
        self._on_message = on_message
        self._on_gap = on_gap
        self.auth_expire_s = auth_expire_s
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.check_interval_s = check_interval_s
        self.reconnect_policy = RetryPolicy(
            max_attempts=None, initial_s=backoff_base_s, max_s=max(backoff_base_s, backoff_max_s)
        )
        self._sleep = sleep
        self.ready_timeout_s = ready_timeout_s
        self._ws: _PrivateWebSocket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._acks = 0
        self._auth: bool | None = None
        self._auth_error = ""
        self._problem: str = ""
        self.fatal: ExchangeError | None = None
        self.reconnects = 0
        self.last_message_ns = 0

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._connect_once()
        self._task = asyncio.create_task(self._supervise(), name="bybit-private-ws")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._exit_async()

    @property
    def healthy(self) -> bool:
        ws = self._ws
        return bool(
            ws is not None
            and not ws.exited
            and ws.is_connected()
            and self._auth
            and not self._problem
        )

    # -- connecting -------------------------------------------------------------------------
    def _build(self) -> None:
        self._acks = 0
        self._auth = None
        self._auth_error = ""
        self._problem = ""
        ws = _PrivateWebSocket(
            self.url,
            testnet=self.env is BybitEnv.TESTNET,
            demo=self.env is BybitEnv.DEMO,
            api_key=self._key,
            api_secret=self._secret,
            private_auth_expire=self.auth_expire_s,  # pybit's 1 s fails with any skew
            ping_interval=self.ping_interval_s,
            ping_timeout=self.ping_timeout_s,
            retries=3,  # pybit raises after its last attempt even when it connected: keep > 1
            restart_on_error=False,  # the supervisor owns reconnects
            callback_function=self._raw,
        )
        self._ws = ws
        for topic in TOPICS:
            if ws.exited or not ws.is_connected():
                raise ConnectionError("private socket closed while subscribing")
            ws.subscribe(topic, callback=lambda _msg: None)

    async def _exit_async(self) -> None:
        try:
            await in_daemon_thread(self._exit, 5.0, "bybit-private-exit")
        except TimeoutError:
            logger.warning("private socket did not close within 5 s; abandoned")

    def _exit(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.exit()
            except Exception:  # already dead: nothing to close
                logger.debug("private socket exit failed", exc_info=True)

    async def _connect_once(self) -> None:
        """Open, authenticate and subscribe; raises on failure (AuthenticationError is final)."""
        try:
            # A daemon thread, not to_thread: pybit's subscribe can hang forever (§6.4).
            await in_daemon_thread(self._build, self.ready_timeout_s, "bybit-private-connect")
        except Exception as exc:
            await self._exit_async()
            raise ExchangeError(f"bybit private socket: {exc.__class__.__name__}: {exc}") from exc
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._auth is False:
                await self._exit_async()
                raise AuthenticationError(f"bybit private socket auth failed: {self._auth_error}")
            if self._problem:
                await self._exit_async()
                raise ExchangeError(f"bybit private socket: {self._problem}")
            if self._auth and self._acks >= len(TOPICS):
                logger.info("bybit private socket ready (%s)", ", ".join(TOPICS))
                return
            await asyncio.sleep(0.02)
        await self._exit_async()
        raise ExchangeError("bybit private socket: no auth/subscribe ack in time")

    async def _supervise(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.check_interval_s)
            if self.healthy:
                continue
            gap_start = time.time_ns()
            logger.warning(
                "bybit private socket down (%s); reconnecting", self._problem or "closed"
            )
            await self._exit_async()
            try:
                await retry_async(
                    self._connect_once,
                    self.reconnect_policy,
                    lambda exc: (
                        isinstance(exc, ExchangeError) and not isinstance(exc, AuthenticationError)
                    ),
                    sleep=self._sleep,
                    what="bybit private socket reconnect",
                )
            except AuthenticationError as exc:
                # Keys do not heal by retrying: stop and say so once.
                self.fatal = exc
                logger.error("%s; not reconnecting", exc)
                return
            if self._closed:
                return
            self.reconnects += 1
            try:
                await self._on_gap(gap_start)
            except Exception:
                logger.exception("re-sync after the private socket gap failed")

    # -- messages (pybit's thread) ------------------------------------------------------------
    def _raw(self, message: dict[str, Any]) -> None:
        # Runs on pybit's socket thread: never raise (it would kill the socket), never block.
        try:
            self.last_message_ns = time.time_ns()
            op = message.get("op")
            if op == "auth":
                ok = bool(message.get("success")) or message.get("retCode") == 0
                self._auth = ok
                if not ok:
                    self._auth_error = str(message.get("ret_msg") or message.get("retMsg") or "")
                return
            if op == "subscribe":
                if message.get("success"):
                    # Count acks: pybit stores req_id only after sending (the §6.3 race).
                    self._acks += 1
                elif not self._problem:  # keep the first reason
                    self._problem = f"subscription refused: {message.get('ret_msg')}"
                return
            if "topic" in message and self._loop is not None:
                self._loop.call_soon_threadsafe(self._on_message, message)
        except Exception:
            logger.exception("private socket message handling failed")
