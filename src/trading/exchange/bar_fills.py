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

import uuid
from decimal import Decimal

from cryptoarena.data.records import Bar
from cryptoarena.trading.exchange.account import ZERO, LinearAccount
from cryptoarena.trading.exchange.errors import OrderNotFoundError, OrderRejectedError
from cryptoarena.trading.exchange.instruments import (
    DEFAULT_INSTRUMENTS,
    find_instrument,
    prepare_order,
)
from cryptoarena.trading.exchange.models import (
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.sim_order import SimOrder
from cryptoarena.trading.exchange.venue import Execution, to_decimal
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BarFillConfig", "BarVenue"]

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
        pos = self.book(book).position_state(req.symbol).qty
        opposite = (pos > 0 and req.side is Side.SELL) or (pos < 0 and req.side is Side.BUY)
        return abs(pos) if opposite else ZERO

    def _execute(
        self, order: SimOrder, bar: Bar, qty: Decimal, price: Decimal, maker: bool
    ) -> Execution:
        req = order.request
        rate = self.config.maker_fee if maker else self.config.taker_fee
        fee = qty * price * rate
        closed = min(qty, self._reducible(req, order.book))
        realised = self.book(order.book).apply_fill(req.symbol, req.side, qty, price, fee)
        order.add_fill(qty, price, fee, bar.ts)
        fill = Fill(
            exec_id=str(uuid.uuid5(_IDS, f"{order.exchange_id}/{bar.ts}")),
            client_id=req.client_id,
            exchange_id=order.exchange_id,
            symbol=req.symbol,
            side=req.side,
            price=price,
            qty=qty,
            fee=fee,
            is_maker=maker,
            ts_ns=bar.ts,
        )
        return Execution(fill, order.snapshot(), rate, realised, closed)
