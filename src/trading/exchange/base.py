"""The exchange protocol every part of the worker talks to: paper or Bybit, the same calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Protocol

from cryptoarena.trading.exchange.models import (
    Balance,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    Position,
)


class Exchange(Protocol):
    name: str

    async def start(self) -> None:
        """Connect and reconcile open orders, positions and balance with the venue."""
        ...

    async def close(self) -> None: ...

    async def instrument(self, symbol: str) -> Instrument: ...

    async def place_order(self, request: OrderRequest) -> Order:
        """Validate against the instrument, round, send. Idempotent on ``client_id``."""
        ...

    async def cancel_order(self, symbol: str, client_id: str) -> Order: ...

    async def amend_order(
        self,
        symbol: str,
        client_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        """Cancel/replace a working limit order in place (new price and/or total qty).

        Raises :class:`OrderNotFoundError` (110001) when it already filled or was cancelled:
        the caller then knows the old order's fate from its updates, never from the amend."""
        ...

    async def open_orders(self, symbol: str) -> list[Order]: ...

    async def get_order(self, symbol: str, client_id: str) -> Order | None: ...

    async def position(self, symbol: str) -> Position: ...

    async def balance(self, coin: str = "USDT") -> Balance: ...

    def updates(self) -> AsyncIterator[Order | Fill]:
        """Order updates and fills as they happen."""
        ...
