"""A simulated venue that fills orders against the real trade tape.

One engine for the paper exchange and the fake Bybit server (tests/fakes), so a scripted
sequence of orders gets the same fills and fees on both. Rules (docs/exchange.md):

- An order *arrives* ``latency_ms`` after it is placed; trades before that are not seen by it.
- Market orders take liquidity: they walk the trades after arrival whose taker side is the
  order's side (a market buy lifts the ask, where the tape's buy-taker trades printed), at
  each trade's price, until filled.
- A limit order that crosses the last price on arrival takes liquidity like a market order
  capped at its price, then rests; a resting limit fills at its price (maker) when the tape
  trades *through* it (strictly beyond: being at the level says nothing about queue position).
- One trade's size is shared by our orders in time priority, never used twice.
- IOC/FOK are resolved on the first trade after arrival; PostOnly that would take is cancelled.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from cryptoarena.data.records import BUY, SELL, Trade
from cryptoarena.trading.exchange.account import ZERO, LinearAccount
from cryptoarena.trading.exchange.errors import (
    InsufficientBalanceError,
    OrderNotFoundError,
    OrderRejectedError,
)
from cryptoarena.trading.exchange.instruments import find_instrument, prepare_order
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
from cryptoarena.trading.exchange.venue_config import VenueConfig

__all__ = ["Execution", "SimVenue", "VenueConfig", "to_decimal"]

_IDS = uuid.UUID("6d1c3b8e-6f53-4f0e-9a53-63a7f3c1a001")


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill and the order as it stands right after it."""

    fill: Fill
    order: Order
    fee_rate: Decimal
    realised_pnl: Decimal
    closed_qty: Decimal


def to_decimal(value: float) -> Decimal:
    # str() of a float is its shortest round-trip form: 9682.48, not 9682.4799999...
    return Decimal(str(value))


class SimVenue:
    """Orders, matching and accounting; time is always passed in (an injected clock)."""

    def __init__(self, config: VenueConfig, *, name: str = "paper") -> None:
        self.config = config
        self.name = name
        self.instruments = {i.symbol: i for i in config.instruments}
        self.account = LinearAccount(config.coin, config.initial_balance, config.leverage)
        self.orders: dict[str, SimOrder] = {}  # by client id, every order ever accepted
        self._open: dict[str, SimOrder] = {}  # the ones still working: the hot loop's list
        self.by_exchange_id: dict[str, SimOrder] = {}
        self.last_price: dict[str, Decimal] = {}
        self._seq = 0

    # -- orders ---------------------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument:
        return find_instrument(self.instruments, symbol)

    def submit(self, request: OrderRequest, now_ns: int) -> tuple[Order, bool]:
        """Accept an order (idempotent on client id): ``(order, created)``; raises refusals."""
        existing = self.orders.get(request.client_id)
        if existing is not None:
            return existing.snapshot(), False
        instrument = self.instrument(request.symbol)
        last = self.last_price.get(request.symbol)
        req = prepare_order(instrument, request, last)
        self._check_reduce_only(req)
        if not req.reduce_only:
            self._check_margin(req, last)
        self._seq += 1
        order = SimOrder(
            request=req,
            exchange_id=str(uuid.uuid5(_IDS, f"{self.name}/{self._seq}/{req.client_id}")),
            seq=self._seq,
            created_ns=now_ns,
            arrival_ns=now_ns + int(self.config.latency_ms * 1_000_000),
        )
        self.orders[req.client_id] = order
        self._open[req.client_id] = order
        self.by_exchange_id[order.exchange_id] = order
        return order.snapshot(), True

    def find(self, *, client_id: str | None = None, exchange_id: str | None = None) -> SimOrder:
        order = None
        if client_id:
            order = self.orders.get(client_id)
        elif exchange_id:
            order = self.by_exchange_id.get(exchange_id)
        if order is None:
            raise OrderNotFoundError("Order does not exist", code=110001)
        return order

    def cancel(
        self, now_ns: int, *, client_id: str | None = None, exchange_id: str | None = None
    ) -> Order:
        order = self.find(client_id=client_id, exchange_id=exchange_id)
        if not order.status.is_open:
            # Bybit answers a cancel of a finished order with "does not exist".
            raise OrderNotFoundError("Order does not exist", code=110001)
        order.close(OrderStatus.CANCELLED, now_ns, cancel_type="CancelByUser")
        self._open.pop(order.request.client_id, None)
        return order.snapshot()

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            o.snapshot()
            for o in self._open.values()
            if o.status.is_open and (symbol is None or o.request.symbol == symbol)
        ]

    def order_margin(self) -> Decimal:
        total = ZERO
        for o in self._open.values():
            if o.status.is_open and not o.request.reduce_only:
                price = o.request.price or self.last_price.get(o.request.symbol, ZERO)
                opening = self.account.opening_qty(o.request.symbol, o.request.side, o.remaining)
                total += opening * price / self.config.leverage
        return total

    def _check_reduce_only(self, req: OrderRequest) -> None:
        if not req.reduce_only:
            return
        pos = self.account.position_state(req.symbol).qty
        if pos == 0:
            raise OrderRejectedError(
                "current position is zero, cannot fix reduce-only order qty", code=110017
            )
        if (pos > 0) == (req.side is Side.BUY):
            raise OrderRejectedError("Reduce-only rule not satisfied", code=110017)

    def _check_margin(self, req: OrderRequest, last: Decimal | None) -> None:
        price = req.price if req.price is not None else last
        if price is None:
            raise OrderRejectedError(
                f"no trade seen yet for {req.symbol}: a market order cannot be priced"
            )
        opening = self.account.opening_qty(req.symbol, req.side, req.qty)
        need = opening * price / self.config.leverage + req.qty * price * self.config.taker_fee
        available = self.account.available(self.order_margin())
        if need > available:
            raise InsufficientBalanceError(
                f"ab not enough for new order (needs {need:.4f}, available {available:.4f} "
                f"{self.config.coin})",
                code=110007,
            )

    # -- matching -------------------------------------------------------------------------
    def on_trades(self, trades: Iterable[Trade]) -> list[Order | Execution]:
        """Match open orders against new tape trades; returns order updates and executions."""
        events: list[Order | Execution] = []
        for trade in trades:
            self._on_trade(trade, events)
        return events

    def _on_trade(self, trade: Trade, events: list[Order | Execution]) -> None:
        price = to_decimal(trade.price)
        if self._open:
            self._match_trade(trade, price, events)
        self.last_price[trade.symbol] = price
        self.account.marks[trade.symbol] = price

    def _match_trade(self, trade: Trade, price: Decimal, events: list[Order | Execution]) -> None:
        available = to_decimal(trade.size)
        ref = self.last_price.get(trade.symbol, price)
        touched = False  # did any order get past the hot path (and maybe close)?
        for order in list(self._open.values()):
            req = order.request
            if req.symbol != trade.symbol or trade.ts < order.arrival_ns:
                continue
            # Hot path: a resting limit the trade does not go through.
            if (
                order.phase == "maker"
                and req.price is not None
                and (price >= req.price if req.side is Side.BUY else price <= req.price)
            ):
                continue
            touched = True
            first = not order.phase
            if first:
                order.phase = self._phase(req, ref)
                if req.time_in_force is TimeInForce.POST_ONLY and order.phase == "taker":
                    order.close(
                        OrderStatus.CANCELLED,
                        trade.ts,
                        cancel_type="CancelByUser",
                        reason="EC_PostOnlyWillTakeLiquidity",
                    )
                    events.append(order.snapshot())
                    continue
            qty, fill_price, maker = self._match(order, trade, price, available)
            if req.reduce_only:
                qty = min(qty, self._reducible(req))
                if self._reducible(req) == 0:
                    order.close(OrderStatus.CANCELLED, trade.ts, cancel_type="CancelByReduceOnly")
                    events.append(order.snapshot())
                    continue
            immediate = req.order_type is OrderType.LIMIT and req.time_in_force in (
                TimeInForce.IOC,
                TimeInForce.FOK,
            )
            if immediate and req.time_in_force is TimeInForce.FOK and qty < order.remaining:
                qty = ZERO
            if qty > 0:
                available -= qty
                events.append(self._execute(order, trade, qty, fill_price, maker))
            if immediate and first and order.status.is_open:
                order.close(OrderStatus.CANCELLED, trade.ts, cancel_type="CancelByUser")
                events.append(order.snapshot())
        if touched:
            for cid in [cid for cid, o in self._open.items() if not o.status.is_open]:
                del self._open[cid]

    @staticmethod
    def _phase(req: OrderRequest, ref: Decimal) -> str:
        if req.order_type is OrderType.MARKET:
            return "taker"
        assert req.price is not None
        crosses = req.price >= ref if req.side is Side.BUY else req.price <= ref
        return "taker" if crosses else "maker"

    @staticmethod
    def _match(
        order: SimOrder, trade: Trade, price: Decimal, available: Decimal
    ) -> tuple[Decimal, Decimal, bool]:
        """(qty, price, is_maker) this trade gives the order; qty 0 when it gives nothing."""
        req = order.request
        buy = req.side is Side.BUY
        limit = req.price
        room = min(order.remaining, available)
        if room <= 0:
            return ZERO, price, False
        if order.phase == "taker":
            if limit is not None and (price > limit if buy else price < limit):
                order.phase = "maker"  # the market moved away: the rest now rests at its price
            else:
                same_side = trade.side in (BUY if buy else SELL, 0)
                return (room if same_side else ZERO), price, False
        assert limit is not None
        through = price < limit if buy else price > limit
        return (room if through else ZERO), limit, True

    def _reducible(self, req: OrderRequest) -> Decimal:
        pos = self.account.position_state(req.symbol).qty
        opposite = (pos > 0 and req.side is Side.SELL) or (pos < 0 and req.side is Side.BUY)
        return abs(pos) if opposite else ZERO

    def _execute(
        self, order: SimOrder, trade: Trade, qty: Decimal, price: Decimal, maker: bool
    ) -> Execution:
        req = order.request
        rate = self.config.maker_fee if maker else self.config.taker_fee
        fee = qty * price * rate
        closed = min(qty, self._reducible(req))
        realised = self.account.apply_fill(req.symbol, req.side, qty, price, fee)
        order.add_fill(qty, price, fee, trade.ts)
        fill = Fill(
            exec_id=str(uuid.uuid5(_IDS, f"{order.exchange_id}/{trade.trade_id}")),
            client_id=req.client_id,
            exchange_id=order.exchange_id,
            symbol=req.symbol,
            side=req.side,
            price=price,
            qty=qty,
            fee=fee,
            is_maker=maker,
            ts_ns=trade.ts,
        )
        return Execution(fill, order.snapshot(), rate, realised, closed)
