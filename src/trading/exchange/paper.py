"""PaperExchange: the exchange protocol on a simulated venue fed by the real trade tape.

The worker hands every batch of trades it gets from its feed to :meth:`PaperExchange.on_trades`
(the same batches its strategies see), after the strategies have reacted to them; orders placed
now arrive ``latency_ms`` later on the exchange clock and fill only against later trades.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from cryptoarena.clock import Clock, LiveClock
from cryptoarena.data.records import Trade
from cryptoarena.trading.exchange.errors import ExchangeError
from cryptoarena.trading.exchange.models import (
    Balance,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    Position,
)
from cryptoarena.trading.exchange.updates import UpdateStream
from cryptoarena.trading.exchange.venue import Execution, SimVenue, VenueConfig
from pydantic import ConfigDict

logger = logging.getLogger(__name__)


class PaperExchangeConfig(VenueConfig):
    """Fees (maker 0.02 %, taker 0.055 %), latency, starting balance, leverage, instruments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "paper"


class PaperExchange:
    """Fills against the tape it is fed; same calls, errors and codes as the Bybit adapter."""

    def __init__(self, config: PaperExchangeConfig | None = None, *, clock: Clock | None = None):
        self.config = config or PaperExchangeConfig()
        self.name = self.config.name
        self.clock: Clock = clock or LiveClock()
        self.venue = SimVenue(self.config, name=self.name)
        self._updates: UpdateStream[Order | Fill] = UpdateStream()
        self._closed = False

    # -- the tape ---------------------------------------------------------------------------
    def on_trades(self, trades: Sequence[Trade]) -> list[Fill]:
        """Feed one batch of tape trades; returns the fills it caused (also in updates())."""
        fills: list[Fill] = []
        for event in self.venue.on_trades(trades):
            if isinstance(event, Execution):
                fills.append(event.fill)
                self._updates.publish(event.order)
                self._updates.publish(event.fill)
            else:
                self._updates.publish(event)
        return fills

    # -- the protocol -----------------------------------------------------------------------
    async def start(self) -> None:
        logger.info(
            "paper exchange %s: %s %s, fees maker %s taker %s, latency %s ms",
            self.name,
            self.config.initial_balance,
            self.config.coin,
            self.config.maker_fee,
            self.config.taker_fee,
            self.config.latency_ms,
        )

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._updates.close()

    async def instrument(self, symbol: str) -> Instrument:
        return self.venue.instrument(symbol)

    async def place_order(self, request: OrderRequest) -> Order:
        self._check_open()
        order, created = self.venue.submit(request, self.clock.now_ns())
        if created:
            logger.debug("paper order %s accepted: %s", order.client_id, order)
            self._updates.publish(order)
        return order

    async def cancel_order(self, symbol: str, client_id: str) -> Order:
        self._check_open()
        self.venue.instrument(symbol)
        order = self.venue.cancel(self.clock.now_ns(), client_id=client_id)
        self._updates.publish(order)
        return order

    async def open_orders(self, symbol: str) -> list[Order]:
        return self.venue.open_orders(symbol)

    async def get_order(self, symbol: str, client_id: str) -> Order | None:
        order = self.venue.orders.get(client_id)
        return order.snapshot() if order and order.request.symbol == symbol else None

    async def position(self, symbol: str) -> Position:
        self.venue.instrument(symbol)
        return self.venue.account.position(symbol)

    async def balance(self, coin: str = "USDT") -> Balance:
        if coin != self.config.coin:
            return Balance(coin=coin, wallet=Decimal(0), available=Decimal(0))
        return self.venue.account.balance(self.venue.order_margin())

    def updates(self) -> AsyncIterator[Order | Fill]:
        return self._updates.subscribe()

    def _check_open(self) -> None:
        if self._closed:
            raise ExchangeError(f"paper exchange {self.name} is closed")
