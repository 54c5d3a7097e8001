"""Bar-level fills: a simulated venue driven by OHLCV bars (klines) instead of the trade tape.

For backtests over recorded klines (months of Binance 1 m bars), where no trades exist. The
rules, stated in docs/exchange.md (and what backtesting.py does with ``trade_on_close=False``):

- An order placed while bar *t* closes is first seen by bar *t+1* (``bar.ts >= placed``).
- Market orders fill in full at that bar's **open** moved against the order by
  ``slippage_bps`` (a buy pays ``open * (1 + s)``, a sell gets ``open * (1 - s)``), taker fee.
- A limit order whose price is at or beyond that open (a buy at or above it) would take on
  arrival: PostOnly is cancelled (``EC_PostOnlyWillTakeLiquidity``); otherwise it fills like a
  market order capped at its limit price (taker fee).
- A resting limit fills at its price (maker fee) in the first bar that trades **through** it:
  ``low < price`` for a buy, ``high > price`` for a sell (touching the level is not enough:
  the queue ahead of us is unknown). IOC/FOK that do not take on arrival are cancelled.
- ``max_volume_fraction`` (optional) caps what one bar gives one order at that share of the
  bar's volume (partial fills); by default an order fills in full, an optimism for sizes that
  are not small against a minute's volume.

Books (accounts), reduce-only and idempotent client ids work as on the tape venue
(:class:`~cryptoarena.trading.exchange.venue.SimVenue`); each book fills as if it were alone.
Deterministic: the same bars and orders give the same fills.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from decimal import Decimal

from cryptoarena.clock import Clock, LiveClock
from cryptoarena.data.records import Bar
from cryptoarena.trading.exchange.account import ZERO, LinearAccount
from cryptoarena.trading.exchange.base import VenueCapabilities
from cryptoarena.trading.exchange.errors import (
    ExchangeError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
)
from cryptoarena.trading.exchange.instruments import (
    DEFAULT_INSTRUMENTS,
    PARAMS_ERROR,
    find_instrument,
    prepare_order,
)
from cryptoarena.trading.exchange.models import (
    Balance,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.paper import book_of
from cryptoarena.trading.exchange.sim_order import SimOrder
from cryptoarena.trading.exchange.updates import UpdateStream
from cryptoarena.trading.exchange.venue import Execution, execute, publish, reducible, to_decimal
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BarExchange", "BarFillConfig", "BarVenue"]

logger = logging.getLogger(__name__)

_IDS = uuid.UUID("0b5e7c52-0f6e-4a8e-9a8a-7d1f0e5b2c11")
BPS = Decimal("0.0001")


class BarFillConfig(BaseModel):
    """Fees (Bybit linear), slippage of market orders, an optional per-bar volume cap."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slippage_bps: Decimal = Field(default=Decimal("1"), ge=0, le=1000)
    maker_fee: Decimal = Field(default=Decimal("0.0002"), ge=-1, le=1)
    taker_fee: Decimal = Field(default=Decimal("0.00055"), ge=-1, le=1)
    max_volume_fraction: Decimal | None = Field(default=None, gt=0, le=1)
    initial_balance: Decimal = Field(default=Decimal("10000"), ge=0)
    coin: str = "USDT"
    leverage: Decimal = Field(default=Decimal("10"), gt=0, le=100)
    instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS


class BarVenue:
    """Orders matched against each new bar; time is the bar's (an injected clock)."""

    def __init__(self, config: BarFillConfig | None = None, *, name: str = "bars") -> None:
        self.config = config or BarFillConfig()
        self.name = name
        self.instruments = {i.symbol: i for i in self.config.instruments}
        self.accounts: dict[str, LinearAccount] = {}
        self.marks: dict[str, Decimal] = {}
        self.orders: dict[str, SimOrder] = {}
        self._open: dict[str, SimOrder] = {}
        self.last_price: dict[str, Decimal] = {}
        self._seq: dict[str, int] = {}

    def book(self, book: str = "") -> LinearAccount:
        account = self.accounts.get(book)
        if account is None:
            cfg = self.config
            account = LinearAccount(cfg.coin, cfg.initial_balance, cfg.leverage)
            account.marks = self.marks
            self.accounts[book] = account
        return account

    # -- orders -----------------------------------------------------------------------------
    def submit(self, request: OrderRequest, now_ns: int, book: str = "") -> tuple[Order, bool]:
        """Accept an order (idempotent on client id): ``(order, created)``; raises refusals."""
        existing = self.orders.get(request.client_id)
        if existing is not None:
            return existing.snapshot(), False
        instrument = find_instrument(self.instruments, request.symbol)
        req = prepare_order(instrument, request, self.last_price.get(request.symbol))
        if req.reduce_only and self._reducible(req, book) == 0:
            raise OrderRejectedError("Reduce-only rule not satisfied", code=110017)
        seq = self._seq.get(book, 0) + 1
        self._seq[book] = seq
        order = SimOrder(
            request=req,
            exchange_id=str(uuid.uuid5(_IDS, f"{self.name}/{book}/{seq}/{req.client_id}")),
            seq=seq,
            created_ns=now_ns,
            arrival_ns=now_ns,
            book=book,
        )
        self.orders[req.client_id] = order
        self._open[req.client_id] = order
        return order.snapshot(), True

    def cancel(self, now_ns: int, client_id: str) -> Order:
        order = self.orders.get(client_id)
        if order is None or not order.status.is_open:
            raise OrderNotFoundError("Order does not exist", code=110001)
        order.close(OrderStatus.CANCELLED, now_ns, cancel_type="CancelByUser")
        del self._open[client_id]
        return order.snapshot()

    def amend(
        self,
        now_ns: int,
        client_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        """New price and/or total qty of a working limit order, from the next bar on (a bar
        is the model's smallest step: no latency race inside it)."""
        order = self.orders.get(client_id)
        if order is None or not order.status.is_open:
            raise OrderNotFoundError("order not exists or too late to replace", code=110001)
        req = order.request
        if req.order_type is not OrderType.LIMIT or (qty is None and price is None):
            raise InvalidOrderError(
                "params error: amend a limit order's qty or price", code=PARAMS_ERROR
            )
        new = replace(
            req, qty=req.qty if qty is None else qty, price=req.price if price is None else price
        )
        new = prepare_order(
            find_instrument(self.instruments, req.symbol), new, self.last_price.get(req.symbol)
        )
        if new.qty <= order.filled_qty:
            raise InvalidOrderError(
                f"params error: qty {new.qty} must exceed the filled qty {order.filled_qty}",
                code=PARAMS_ERROR,
            )
        order.request, order.arrival_ns, order.phase = new, now_ns, ""
        order.updated_ns = max(order.updated_ns, now_ns)
        return order.snapshot()

    @property
    def has_open(self) -> bool:
        """Any order still working (the driver skips matching bars when there is none)."""
        return bool(self._open)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o.snapshot() for o in self._open.values() if symbol in (None, o.request.symbol)]

    # -- matching ---------------------------------------------------------------------------
    def on_bar(self, bar: Bar, symbol: str = "BTCUSDT") -> list[Order | Execution]:
        """Match the working orders against one closed bar; returns updates and executions."""
        events: list[Order | Execution] = []
        for order in list(self._open.values()):
            if order.request.symbol == symbol and bar.ts >= order.arrival_ns:
                self._match(order, bar, events)
                if not order.status.is_open:
                    del self._open[order.request.client_id]
        close = to_decimal(bar.close)
        self.last_price[symbol] = close
        self.marks[symbol] = close
        return events

    def _match(self, order: SimOrder, bar: Bar, events: list[Order | Execution]) -> None:
        req = order.request
        buy = req.side is Side.BUY
        first = not order.phase
        if first:
            order.phase = self._phase(req, to_decimal(bar.open))
            if order.phase == "taker" and req.time_in_force is TimeInForce.POST_ONLY:
                order.close(
                    OrderStatus.CANCELLED,
                    bar.ts,
                    cancel_type="CancelByUser",
                    reason="EC_PostOnlyWillTakeLiquidity",
                )
                events.append(order.snapshot())
                return
        price: Decimal | None = None
        maker = order.phase == "maker"
        if not maker:
            slip = self.config.slippage_bps * BPS
            price = to_decimal(bar.open) * (1 + slip if buy else 1 - slip)
            if req.price is not None:
                price = min(price, req.price) if buy else max(price, req.price)
        elif req.price is not None and (
            to_decimal(bar.low) < req.price if buy else to_decimal(bar.high) > req.price
        ):
            price = req.price
        qty = ZERO if price is None else self._room(order, bar)
        if req.reduce_only:
            qty = min(qty, self._reducible(req, order.book))
        if req.time_in_force is TimeInForce.FOK and qty < order.remaining:
            qty = ZERO
        if qty > 0 and price is not None:
            events.append(self._execute(order, bar, qty, price, maker))
        immediate = req.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
        if order.status.is_open and ((first and immediate) or (req.reduce_only and qty == 0)):
            kind = "CancelByReduceOnly" if req.reduce_only and not immediate else "CancelByUser"
            order.close(OrderStatus.CANCELLED, bar.ts, cancel_type=kind)
            events.append(order.snapshot())
        elif req.order_type is OrderType.LIMIT:
            order.phase = "maker"  # what a crossing limit did not get now rests at its price

    @staticmethod
    def _phase(req: OrderRequest, open_: Decimal) -> str:
        if req.order_type is OrderType.MARKET or req.price is None:
            return "taker"
        takes = req.price >= open_ if req.side is Side.BUY else req.price <= open_
        return "taker" if takes else "maker"

    def _room(self, order: SimOrder, bar: Bar) -> Decimal:
        cap = self.config.max_volume_fraction
        if cap is None:
            return order.remaining
        instrument = find_instrument(self.instruments, order.request.symbol)
        return min(order.remaining, instrument.round_qty(to_decimal(bar.volume) * cap))

    def _reducible(self, req: OrderRequest, book: str) -> Decimal:
        return reducible(self.book(book), req)

    def _execute(
        self, order: SimOrder, bar: Bar, qty: Decimal, price: Decimal, maker: bool
    ) -> Execution:
        exec_id = str(uuid.uuid5(_IDS, f"{order.exchange_id}/{bar.ts}"))
        rate = self.config.maker_fee if maker else self.config.taker_fee
        return execute(self.book(order.book), order, qty, price, rate, maker, bar.ts, exec_id)


class BarExchange:
    """The exchange protocol on a :class:`BarVenue`: what a bar-driven backtest hands its
    orders to. The driver calls :meth:`on_bars` with each closed bar *before* the strategies
    see it (orders placed at the previous close fill on it), books the returned fills, then
    lets the strategies decide at the bar's close (``clock`` = the close time)."""

    books_are_accounts = True  # as on the paper exchange: one account per book
    capabilities = VenueCapabilities(pull_updates=True)  # fills from bars, not the tape

    def __init__(
        self,
        config: BarFillConfig | None = None,
        *,
        clock: Clock | None = None,
        symbol: str = "BTCUSDT",
        name: str = "bars",
        book_of: Callable[[str], str] = book_of,
        updates: UpdateStream[Order | Fill] | None = None,
    ) -> None:
        self.config = config or BarFillConfig()
        self.name = name
        self.symbol = symbol
        self.clock: Clock = clock or LiveClock()
        self.venue = BarVenue(self.config, name=name)
        self.book_of = book_of
        # A bar backtest's driver passes a stream it empties itself, synchronously.
        self._updates: UpdateStream[Order | Fill] = updates or UpdateStream()
        self._closed = False

    def on_bars(self, bars: Iterable[Bar]) -> list[Fill]:
        fills: list[Fill] = []
        for bar in bars:
            fills += publish(self.venue.on_bar(bar, self.symbol), self._updates)
        return fills

    async def start(self) -> None:
        logger.info(
            "bar exchange %s: slippage %s bp, fees maker %s taker %s",
            self.name,
            self.config.slippage_bps,
            self.config.maker_fee,
            self.config.taker_fee,
        )

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._updates.close()

    async def instrument(self, symbol: str) -> Instrument:
        return find_instrument(self.venue.instruments, symbol)

    async def place_order(self, request: OrderRequest) -> Order:
        self._check_open()
        book = self.book_of(request.client_id)
        order, created = self.venue.submit(request, self.clock.now_ns(), book)
        if created:
            self._updates.publish(order)
        return order

    async def cancel_order(self, symbol: str, client_id: str) -> Order:
        self._check_open()
        order = self.venue.cancel(self.clock.now_ns(), client_id)
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
        self._check_open()
        order = self.venue.amend(self.clock.now_ns(), client_id, qty=qty, price=price)
        self._updates.publish(order)
        return order

    async def open_orders(self, symbol: str) -> list[Order]:
        return self.venue.open_orders(symbol)

    async def get_order(self, symbol: str, client_id: str) -> Order | None:
        order = self.venue.orders.get(client_id)
        return order.snapshot() if order and order.request.symbol == symbol else None

    async def position(self, symbol: str) -> Position:
        qty = sum((a.position_state(symbol).qty for a in self.venue.accounts.values()), ZERO)
        return Position(symbol=symbol, qty=qty, avg_price=ZERO)

    async def balance(self, coin: str = "USDT") -> Balance:
        wallet = sum((a.wallet for a in self.venue.accounts.values()), ZERO)
        return Balance(coin=coin, wallet=wallet, available=wallet)

    def updates(self) -> AsyncIterator[Order | Fill]:
        return self._updates.subscribe()

    def updates_sync(self, wake: Callable[[], None]) -> deque[Order | Fill]:
        """The same events without the event loop (the engine's synchronous drive)."""
        return self._updates.subscribe_sync(wake)

    def _check_open(self) -> None:
        if self._closed:
            raise ExchangeError(f"bar exchange {self.name} is closed")
