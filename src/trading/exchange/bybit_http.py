"""pybit's synchronous REST client, run in a worker thread, with translation and retries.

Every REST call goes through :meth:`BybitHttp.call`: pybit's own retries are switched off
(``retry_codes={0}``, ``max_retries=1``), errors are translated once (:mod:`bybit_errors`), and
only temporary ones are retried here, under the project's one :class:`~cryptoarena.retry.RetryPolicy`
(exponential backoff with jitter that honours 10006's reset time).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import tenacity
from cryptoarena.config import BybitEnv
from cryptoarena.retry import AsyncSleep, RetryPolicy, retry_async
from cryptoarena.trading.exchange.bybit_errors import translate
from cryptoarena.trading.exchange.errors import TemporaryExchangeError
from pybit.unified_trading import HTTP

logger = logging.getLogger(__name__)


def make_http(
    env: BybitEnv,
    api_key: str | None,
    api_secret: str | None,
    *,
    rest_url: str | None = None,
    recv_window: int = 5000,
    timeout_s: float = 10.0,
) -> HTTP:
    """A pybit HTTP session for demo (api-demo), testnet or mainnet, or a custom base URL."""
    http = HTTP(
        testnet=env is BybitEnv.TESTNET,
        demo=env is BybitEnv.DEMO,
        api_key=api_key,
        api_secret=api_secret,
        recv_window=recv_window,
        timeout=timeout_s,  # requests takes float seconds
        max_retries=1,
        retry_codes={0},  # an empty set means "the defaults" to pybit; 0 never errors
        log_requests=False,  # pybit would log the signed headers, API key included
    )
    if rest_url:
        http.endpoint = rest_url.rstrip("/")
    return http


class BybitHttp:
    def __init__(
        self,
        factory: Callable[[], HTTP],
        *,
        policy: RetryPolicy | None = None,
        sleep: AsyncSleep = asyncio.sleep,
    ) -> None:
        self.factory = factory
        self.policy = policy or RetryPolicy(max_attempts=4, initial_s=0.5, max_s=8.0)
        self._sleep = sleep
        # requests.Session is not thread-safe: one pybit session per worker thread, so a slow
        # create does not hold up a cancel either.
        self._local = threading.local()
        self.calls = 0

    def session(self) -> HTTP:
        http: HTTP | None = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self.factory()
        return http

    def _call_sync(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        response: dict[str, Any] = getattr(self.session(), method)(**params)
        return response

    async def call_once(self, method: str, **params: Any) -> dict[str, Any]:
        """One attempt; returns ``result``; raises the translated error."""
        try:
            response = await asyncio.to_thread(self._call_sync, method, params)
        except Exception as exc:
            error = translate(exc)
            raise error from exc
        result: dict[str, Any] = response.get("result") or {}
        return result

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Retry temporary failures (safe for reads and cancels, never for creates)."""
        return await retry_async(
            lambda: self.call_once(method, **params),
            self.policy,
            TemporaryExchangeError,
            sleep=self._sleep,
            what=f"bybit {method}",
        )

    def attempts(self, what: str) -> tenacity.AsyncRetrying:
        """The policy's attempts for a call that acts between them (``async for ... with``):
        only :class:`TemporaryExchangeError` is retried; the last one is re-raised."""
        return self.policy.async_retrying(
            TemporaryExchangeError, sleep=self._sleep, what=f"bybit {what}"
        )
