"""The exchange protocol every part of the worker talks to: paper or Bybit, the same calls."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, cast

from cryptoarena.data.records import Bar, Trade
from cryptoarena.trading.exchange.models import (
    Balance,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    Position,
)


@dataclass(frozen=True)
class VenueCapabilities:
    """What a venue declares it can do (freqtrade's ``_ft_has``), so the engine never probes an
    exchange for methods: a real venue declares neither."""

    tape_fills: bool = False  # fills against the replayed tape: hand it each batch (TapeVenue)
    pull_updates: bool = False  # updates pulled without an event loop (PullVenue): sync drive
    bar_fills: bool = False  # fills against recorded bars (klines): hand it each bar (BarFillVenue)
    # Keeps its working orders and books only in memory: a restart gives them back from the
    # journal (JournalVenue); a real venue keeps them itself.
    journal_orders: bool = False
    # One account per strategy behind one exchange: strategy → account bindings, and a
    # position per account to reconcile alone (AccountsVenue).
    accounts: bool = False


LIVE_VENUE = VenueCapabilities()


class TapeVenue(Protocol):
    def on_trades(self, trades: Sequence[Trade]) -> list[Fill]:
        """Feed one batch of tape trades; returns the fills it caused (also in its updates)."""
        ...


class BarFillVenue(Protocol):
    """A simulated venue a bar backtest drives: each bar in turn, before its close decides."""

    # The orders still working, by client id (empty: nothing to match on a bar); read per bar,
    # so a plain mapping rather than a call.
    working: Mapping[str, object]

    def on_bars(self, bars: Iterable[Bar], symbol: str) -> list[Fill]:
        """Match the working orders against these bars of ``symbol``; returns the fills (also
        in its updates). Each bar's close becomes the last price."""
        ...

    def mark(self, symbol: str, price: Decimal) -> None:
        """The last price without a bar or trade (a decision at a close)."""
        ...


class PullVenue(Protocol):
    def updates_sync(self, wake: Callable[[], None]) -> deque[Order | Fill]:
        """Updates appended to the returned deque as they happen, ``wake`` called on each."""
        ...


@dataclass(frozen=True)
class WorkingOrder:
    """An order that was still working when the worker stopped, as its journal tells it: what
    was sent, when, and what of it had filled (the fills booked before the stop)."""

    request: OrderRequest
    strategy: str
    sent_ns: int
    filled_qty: Decimal
    cum_value: Decimal  # sum of qty x price over its fills
    cum_fee: Decimal
    exchange_id: str | None  # the venue's id, when an update journaled it
    price: Decimal | None  # the limit it works at now (an amendment that landed moved it)


class JournalVenue(Protocol):
    def restore_order(self, order: WorkingOrder, *, resume_ns: int) -> bool:
        """Work ``order`` again (its rest, on its own terms), seeing only trades at or after
        ``resume_ns``; False if this venue does not hold the order's book."""
        ...

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
        """Give ``book`` (a strategy index, as in its client ids) its position and P&L back
        from the journal; False (nothing done) if it already trades or is not held here."""
        ...


@dataclass(frozen=True)
class AccountPosition:
    account: str
    strategies: tuple[str, ...]
    qty: Decimal


class AccountsVenue(Protocol):
    """A venue that declares ``accounts``: each strategy trades on its own account."""

    bindings: dict[str, str]  # strategy name → account name, in the worker's strategy order

    async def positions(self, symbol: str) -> list[AccountPosition]:
        """The position of each account, with the strategies bound to it."""
        ...


def account_bindings(exchange: Exchange) -> dict[str, str]:
    """Strategy → account on a venue that declares ``accounts``; empty on any other."""
    if not exchange.capabilities.accounts:
        return {}
    return cast("AccountsVenue", exchange).bindings


class Exchange(Protocol):
    name: str
    capabilities: VenueCapabilities

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
