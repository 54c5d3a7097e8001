"""Shared setup for BybitExchange tests: the real pybit client against the fake Bybit server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from cryptoarena.clock import Clock
from cryptoarena.config import BybitEnv, BybitSettings
from cryptoarena.trading.exchange.bybit import BybitExchange, BybitExchangeConfig
from cryptoarena.trading.exchange.models import Fill, Order
from cryptoarena.trading.exchange.venue import VenueConfig
from pydantic import SecretStr

from tests.fakes.bybit_account import TEST_KEY, TEST_SECRET, FakeAccount
from tests.fakes.bybit_server import FakeBybit

FAST = BybitExchangeConfig(
    timeout_s=1.0,
    max_attempts=4,
    backoff_base_s=0.05,
    backoff_max_s=0.5,
    ws_check_interval_s=0.1,
    ws_backoff_max_s=0.5,
    ws_ping_interval_s=5,
    ws_ping_timeout_s=3,
)


def settings_for(
    fake: FakeBybit, *, key: str = TEST_KEY, secret: str = TEST_SECRET
) -> BybitSettings:
    return BybitSettings(
        env=BybitEnv.DEMO,
        api_key=SecretStr(key),
        api_secret=SecretStr(secret),
        rest_url=fake.http_url,
        ws_private_url=fake.http_url.replace("http://", "ws://"),
    )


@asynccontextmanager
async def bybit_on_fake(
    venue: VenueConfig | None = None,
    *,
    clock: Clock | None = None,
    config: BybitExchangeConfig = FAST,
    start: bool = True,
) -> AsyncIterator[tuple[BybitExchange, FakeAccount, FakeBybit]]:
    account = FakeAccount(config=venue, clock=clock)
    with FakeBybit(plugins=account.plugins) as fake:
        exchange = BybitExchange(settings_for(fake), config, clock=clock)
        try:
            if start:
                await exchange.start()
            yield exchange, account, fake
        finally:
            await exchange.close()


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


class Collector:
    """Collects an exchange's updates in the background."""

    def __init__(self, stream: AsyncIterator[Order | Fill]) -> None:
        self.events: list[Order | Fill] = []
        self._task = asyncio.create_task(self._run(stream))

    async def _run(self, stream: AsyncIterator[Order | Fill]) -> None:
        async for event in stream:
            self.events.append(event)

    @property
    def fills(self) -> list[Fill]:
        return [e for e in self.events if isinstance(e, Fill)]

    def orders(self, client_id: str) -> list[Order]:
        return [e for e in self.events if isinstance(e, Order) and e.client_id == client_id]

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
