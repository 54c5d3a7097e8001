"""PaperExchange: the exchange protocol on a simulated venue fed by the real trade tape.

The worker hands every batch of trades it gets from its feed to :meth:`PaperExchange.on_trades`
(the same batches its strategies see), after the strategies have reacted to them; orders placed
now arrive ``latency_ms`` later on the exchange clock and fill only against later trades.

Each strategy trades its own *book* on the venue (own wallet, position and margin), found from
the client id (``<run tag>-<strategy index>-<incarnation>-<seq>``, see :func:`book_of`); with
the default ``Liquidity.ISOLATED`` it fills against the tape as if it were alone, so its fills
never depend on which other strategies run or in what order (docs/exchange.md).

A bar backtest feeds it klines instead (:meth:`PaperExchange.on_bars`, the venue's bar fill
rule): the same orders, margin, books and updates, with fills from bars.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from cryptoarena.clock import Clock, LiveClock
from cryptoarena.data.book_replay import RecordedMarket
from cryptoarena.data.records import Bar, Trade
from cryptoarena.trading.exchange.account import ZERO
from cryptoarena.trading.exchange.base import VenueCapabilities, WorkingOrder

if TYPE_CHECKING:
    from cryptoarena.trading.exchange.base import BarFillVenue, JournalVenue, PullVenue, TapeVenue
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
from cryptoarena.trading.exchange.venue import SimVenue, VenueConfig, publish
from pydantic import ConfigDict

logger = logging.getLogger(__name__)


def book_of(client_id: str) -> str:
    """The book (strategy index) a worker client id belongs to; "" for any other id."""
    parts = client_id.split("-")
    return parts[1] if len(parts) == 4 and parts[1].isdigit() else ""


class PaperExchangeConfig(VenueConfig):
    """Fees (maker 0.02 %, taker 0.055 %), latency, starting balance *per book*, leverage,
    instruments, and how books share the tape (``liquidity``, default isolated)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "paper"


class PaperExchange:
    """Fills against the tape it is fed; same calls, errors and codes as the Bybit adapter.
    Each book (strategy) has its own account here: its reduce-only orders are judged against
    its own position, never the net of the other books (see the router)."""

    capabilities = VenueCapabilities(
        tape_fills=True, pull_updates=True, bar_fills=True, journal_orders=True
    )

    def __init__(
        self,
        config: PaperExchangeConfig | None = None,
        *,
        clock: Clock | None = None,
        book_of: Callable[[str], str] = book_of,
        market: RecordedMarket | None = None,
        updates: UpdateStream[Order | Fill] | None = None,
    ):
        self.config = config or PaperExchangeConfig()
        self.name = self.config.name
        self.clock: Clock = clock or LiveClock()
        self.book_of = book_of
        self.venue = SimVenue(self.config, name=self.name, market=market)
        self.working: Mapping[str, object] = self.venue.working  # read by a bar driver
        # A bar backtest's driver passes a stream it empties itself, synchronously.
        self._updates: UpdateStream[Order | Fill] = updates or UpdateStream()
        self._closed = False

    # -- the tape ---------------------------------------------------------------------------
    def on_trades(self, trades: Sequence[Trade]) -> list[Fill]:
        """Feed one batch of tape trades; returns the fills it caused (also in updates())."""
        return publish(self.venue.on_trades(trades), self._updates)

    # -- bars (klines) -----------------------------------------------------------------------
    def on_bars(self, bars: Iterable[Bar], symbol: str) -> list[Fill]:
        """Feed bars of ``symbol`` in order; returns the fills they caused (also in updates())."""
        fills: list[Fill] = []
        for bar in bars:
            fills += publish(self.venue.on_bar(bar, symbol), self._updates)
        return fills

    def mark(self, symbol: str, price: Decimal) -> None:
        self.venue.mark(symbol, price)

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
        book = self.book_of(request.client_id)
        order, created = self.venue.submit(request, self.clock.now_ns(), book)
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

    async def amend_order(
        self,
        symbol: str,
        client_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        """Cancel/replace in place: new price and/or total qty, landing after the latency."""
        self._check_open()
        self.venue.instrument(symbol)
        return self.venue.amend(self.clock.now_ns(), client_id=client_id, qty=qty, price=price)

    async def open_orders(self, symbol: str) -> list[Order]:
        return self.venue.open_orders(symbol)

    async def get_order(self, symbol: str, client_id: str) -> Order | None:
        order = self.venue.orders.get(client_id)
        return order.snapshot() if order and order.request.symbol == symbol else None

    async def position(self, symbol: str) -> Position:
        """The net over every book (what the worker's books sum to); see :meth:`book_position`."""
        self.venue.instrument(symbol)
        accounts = self.venue.accounts or {"": self.venue.account}
        if len(accounts) == 1:
            return next(iter(accounts.values())).position(symbol)
        qty = sum((a.position_state(symbol).qty for a in accounts.values()), ZERO)
        upl = sum((a.position(symbol).unrealised_pnl for a in accounts.values()), ZERO)
        return Position(symbol=symbol, qty=qty, avg_price=ZERO, unrealised_pnl=upl)

    def book_position(self, book: str, symbol: str) -> Position:
        return self.venue.book(book).position(symbol)

    async def balance(self, coin: str = "USDT") -> Balance:
        """Summed over the books that exist (each starts with ``initial_balance``)."""
        if coin != self.config.coin:
            return Balance(coin=coin, wallet=Decimal(0), available=Decimal(0))
        if not self.venue.accounts:
            self.venue.book("")
        wallet = available = ZERO
        for book, account in self.venue.accounts.items():
            b = account.balance(self.venue.order_margin(book))
            wallet, available = wallet + b.wallet, available + b.available
        return Balance(coin=coin, wallet=wallet, available=available)

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
        """After a restart: give one book its position and P&L back from the journal (the
        paper venue's only persistence). False (nothing done) if the book already trades."""
        account = self.venue.book(book)
        state = account.position_state(symbol)
        if state.qty != 0 or account.fees_paid != 0:
            return False
        state.qty, state.avg_price = qty, (avg_price if qty != 0 else ZERO)
        account.wallet += realised - fees
        account.fees_paid += fees
        return True

    def restore_order(self, order: WorkingOrder, *, resume_ns: int) -> bool:
        """After a restart: the venue lived in the worker's memory, so an order the journal saw
        working goes on working here (its book from its client id), on trades from
        ``resume_ns`` on."""
        self.venue.restore(order, self.book_of(order.request.client_id), resume_ns)
        return True

    def updates(self) -> AsyncIterator[Order | Fill]:
        return self._updates.subscribe()

    def updates_sync(self, wake: Callable[[], None]) -> deque[Order | Fill]:
        """A simulated venue's updates without the event loop (the synchronous backtest drive):
        the same events as :meth:`updates`, in the same order, appended to the deque returned."""
        return self._updates.subscribe_sync(wake)

    def _check_open(self) -> None:
        if self._closed:
            raise ExchangeError(f"paper exchange {self.name} is closed")


if TYPE_CHECKING:  # what it declares, checked by the type checker
    _tape: type[TapeVenue] = PaperExchange
    _pull: type[PullVenue] = PaperExchange
    _bars: type[BarFillVenue] = PaperExchange
    _journal: type[JournalVenue] = PaperExchange
