"""AccountsExchange: one exchange per account behind the single exchange protocol the worker uses.

Each strategy is bound to one member exchange (its own Bybit (sub-)account, or the paper venue
on the same tape), so no two strategies' positions net on one account. Orders are routed by the
strategy index inside the client id (``<run tag>-<index>-<incarnation>-<seq>``, see
:mod:`cryptoarena.trading.execution.router`); order updates and fills of every member are merged into one
stream. Positions are compared per account at restart (:meth:`positions`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from cryptoarena.data.records import Trade
from cryptoarena.trading.exchange.base import (
    AccountPosition,
    AccountsVenue,
    Exchange,
    JournalVenue,
    TapeVenue,
    VenueCapabilities,
    WorkingOrder,
)
from cryptoarena.trading.exchange.errors import InvalidOrderError
from cryptoarena.trading.exchange.models import (
    Balance,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    Position,
)

logger = logging.getLogger(__name__)

PAPER = "paper"  # the member name of the paper venue (a reserved account name)


class AccountsExchange:
    """``members``: account name → exchange; ``bindings``: strategy name → account name, in the
    worker's strategy order (the router's index)."""

    def __init__(self, members: dict[str, Any], bindings: dict[str, str], name: str) -> None:
        unknown = sorted(set(bindings.values()) - set(members))
        if unknown:
            raise ValueError(f"strategies bound to accounts without an exchange: {unknown}")
        self.members = members
        self.bindings = dict(bindings)
        self.name = name
        # Its paper member fills against the tape; its updates come through the event loop.
        self.capabilities = VenueCapabilities(
            tape_fills=PAPER in members, journal_orders=PAPER in members, accounts=True
        )
        self._by_index: list[Exchange] = [members[a] for a in bindings.values()]

    # -- routing ----------------------------------------------------------------------------
    def _for_client(self, client_id: str) -> Exchange | None:
        parts = client_id.split("-")
        if len(parts) == 4 and parts[1].isdigit() and int(parts[1]) < len(self._by_index):
            return self._by_index[int(parts[1])]
        return None

    def _primary(self) -> Exchange:
        # A real venue's instrument rules win over the paper venue's defaults.
        live = [ex for account, ex in self.members.items() if account != PAPER]
        return live[0] if live else next(iter(self.members.values()))

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        for account, exchange in self.members.items():
            bound = [s for s, a in self.bindings.items() if a == account]
            where = "paper on the same tape" if account == PAPER else f"account {account!r}"
            logger.info("%s: %s trade(s) %s", exchange.name, ", ".join(bound), where)
            await exchange.start()

    async def close(self) -> None:
        for exchange in self.members.values():
            await exchange.close()

    # -- the protocol -----------------------------------------------------------------------
    async def instrument(self, symbol: str) -> Instrument:
        return await self._primary().instrument(symbol)

    async def place_order(self, request: OrderRequest) -> Order:
        exchange = self._for_client(request.client_id)
        if exchange is None:
            raise InvalidOrderError(f"client id {request.client_id!r} names no bound strategy")
        return await exchange.place_order(request)

    async def cancel_order(self, symbol: str, client_id: str) -> Order:
        exchange = self._for_client(client_id)
        if exchange is None:
            raise InvalidOrderError(f"client id {client_id!r} names no bound strategy")
        return await exchange.cancel_order(symbol, client_id)

    async def amend_order(
        self,
        symbol: str,
        client_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        exchange = self._for_client(client_id)
        if exchange is None:
            raise InvalidOrderError(f"client id {client_id!r} names no bound strategy")
        return await exchange.amend_order(symbol, client_id, qty=qty, price=price)

    async def get_order(self, symbol: str, client_id: str) -> Order | None:
        exchange = self._for_client(client_id)
        return None if exchange is None else await exchange.get_order(symbol, client_id)

    async def open_orders(self, symbol: str) -> list[Order]:
        out: list[Order] = []
        for exchange in self.members.values():
            out += await exchange.open_orders(symbol)
        return out

    async def position(self, symbol: str) -> Position:
        """The net over every account (what the books sum to); see :meth:`positions`."""
        qty = sum((p.qty for p in await self.positions(symbol)), Decimal(0))
        return Position(symbol=symbol, qty=qty, avg_price=Decimal(0))

    async def positions(self, symbol: str) -> list[AccountPosition]:
        out = []
        for account, exchange in self.members.items():
            strategies = tuple(s for s, a in self.bindings.items() if a == account)
            out.append(AccountPosition(account, strategies, (await exchange.position(symbol)).qty))
        return out

    async def balance(self, coin: str = "USDT") -> Balance:
        wallet = available = Decimal(0)
        for exchange in self.members.values():
            b = await exchange.balance(coin)
            wallet, available = wallet + b.wallet, available + b.available
        return Balance(coin=coin, wallet=wallet, available=available)

    def updates(self) -> AsyncIterator[Order | Fill]:
        return self._merged()

    async def _merged(self) -> AsyncIterator[Order | Fill]:
        queue: asyncio.Queue[Order | Fill | None] = asyncio.Queue()

        async def pump(stream: AsyncIterator[Order | Fill]) -> None:
            try:
                async for update in stream:
                    queue.put_nowait(update)
            finally:
                queue.put_nowait(None)

        tasks = [asyncio.create_task(pump(ex.updates())) for ex in self.members.values()]
        open_streams = len(tasks)
        try:
            while open_streams:
                item = await queue.get()
                if item is None:
                    open_streams -= 1
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()

    # -- the paper member -------------------------------------------------------------------
    def restore_order(self, order: WorkingOrder, *, resume_ns: int) -> bool:
        """Only a member that keeps its orders in memory (the paper venue) takes one back."""
        exchange = self._for_client(order.request.client_id)
        if exchange is None or not exchange.capabilities.journal_orders:
            return False
        return cast("JournalVenue", exchange).restore_order(order, resume_ns=resume_ns)

    def seed_book(
        self,
        book: str,
        symbol: str,
        *,
        qty: Decimal,
        avg_price: Decimal,
        realised: Decimal,
        fees: Decimal,
    ) -> bool:
        """Only the member that keeps its books in memory (the paper venue) is seeded: a real
        account holds its own position."""
        index = int(book) if book.isdigit() else len(self._by_index)
        exchange = self._by_index[index] if index < len(self._by_index) else None
        if exchange is None or not exchange.capabilities.journal_orders:
            return False
        return cast("JournalVenue", exchange).seed_book(
            book, symbol, qty=qty, avg_price=avg_price, realised=realised, fees=fees
        )

    def on_trades(self, trades: Sequence[Trade]) -> list[Fill]:
        paper = self.members.get(PAPER)
        return [] if paper is None else list(paper.on_trades(trades))


if TYPE_CHECKING:  # what it declares, checked by the type checker
    _accounts: type[AccountsVenue] = AccountsExchange
    _journal: type[JournalVenue] = AccountsExchange
    _tape: type[TapeVenue] = AccountsExchange
