"""A simulated venue that fills orders against the real trade tape.

One engine for the paper exchange and the fake Bybit server (tests/fakes), so a scripted
sequence of orders gets the same fills and fees on both. Rules (docs/exchange.md):

- Each order belongs to a *book* (an account: one per strategy on the paper exchange, the only
  one on the fake Bybit). Books have their own wallet, position and margin, and by default
  (``Liquidity.ISOLATED``) each book sees the whole size of every trade, as if it were alone:
  a book's fills never depend on another book's orders. Within a book, one trade's size is
  shared by its orders in time priority, never used twice.
- An order *arrives* ``latency_ms`` after it is placed; trades before that are not seen by it.
  An amendment (new price and/or quantity) arrives the same way: until then the order works on
  its old terms. Cancels take effect at once.
- Market orders take liquidity: they walk the trades after arrival whose taker side is the
  order's side (a market buy lifts the ask, where the tape's buy-taker trades printed), at
  each trade's price, until filled.
- On arrival a limit order *crosses* when it is beyond the last trade price, or at it when the
  last trade was taken from the order's own side (a buy at a price where buyers just lifted
  the ask). A crossing limit takes liquidity like a market order capped at its price, then
  rests; PostOnly that would cross is cancelled (``EC_PostOnlyWillTakeLiquidity``).
- A resting limit fills at its price (maker fee) only after the queue ahead of it at its price
  has traded (``exchange.queues``: estimated from the tape by default, from a recorded book
  when there is one); a trade fills it by at most what is left of its size once it has paid
  off that queue (partial fills). Fills come in whole lots (``qty_step``): the part of a trade
  or level below a lot fills nothing.
- With a recorded book (L2), a taker order walks the book as it stood when the order arrived,
  level by level, instead of the tape.
- IOC/FOK are resolved on the first trade after arrival.

Recorded klines carry no trades: :meth:`SimVenue.on_bar` matches the same orders, books and
accounts against one bar instead (the bar fill rule, docs/exchange.md "Bar-level fills", what
backtesting.py does): an order is first seen by the first bar that opens at or after its
arrival; a market order, or a limit at or beyond that open, takes at the open moved against it
by ``slippage_bps`` (capped at its limit); a resting limit fills at its price in the first bar
that trades through it (``low < price`` for a buy). Submission, margin, reduce-only, cancels and
amendments are the venue's one set of rules whatever the data.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

from cryptoarena.data.book_replay import ASK, BID, RecordedMarket
from cryptoarena.data.records import BUY, SELL, Bar, Trade
from cryptoarena.trading.exchange.account import ZERO, LinearAccount
from cryptoarena.trading.exchange.base import WorkingOrder
from cryptoarena.trading.exchange.errors import (
    InsufficientBalanceError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
)
from cryptoarena.trading.exchange.instruments import (
    PARAMS_ERROR,
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
from cryptoarena.trading.exchange.queues import Queues
from cryptoarena.trading.exchange.sim_order import SimOrder
from cryptoarena.trading.exchange.updates import UpdateStream
from cryptoarena.trading.exchange.venue_config import Liquidity, VenueConfig

__all__ = ["Execution", "Liquidity", "SimVenue", "VenueConfig", "to_decimal"]

ORDER_NOT_FOUND = 110001  # Bybit: "order not exists or too late to cancel/replace"

_IDS = uuid.UUID("6d1c3b8e-6f53-4f0e-9a53-63a7f3c1a001")
_IDS_BYTES = _IDS.bytes


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(_IDS, name))`` without building a ``UUID`` (ids of every order and bar
    fill: the object's checks were most of their cost)."""
    b = bytearray(hashlib.sha1(_IDS_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


BPS = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill and the order as it stands right after it."""

    fill: Fill
    order: Order
    fee_rate: Decimal
    realised_pnl: Decimal
    closed_qty: Decimal


def publish(events: Iterable[Execution | Order], updates: UpdateStream[Order | Fill]) -> list[Fill]:
    """Hand a venue's events to the exchange's update stream (an execution as the order, then
    its fill); returns the fills, for a driver that books them at once."""
    fills: list[Fill] = []
    for event in events:
        if isinstance(event, Execution):
            fills.append(event.fill)
            updates.publish(event.order)
            updates.publish(event.fill)
        else:
            updates.publish(event)
    return fills


def to_decimal(value: float) -> Decimal:
    # str() of a float is its shortest round-trip form: 9682.48, not 9682.4799999...
    return Decimal(str(value))


class SimVenue:
    """Orders, matching and accounting; time is always passed in (an injected clock)."""

    def __init__(
        self, config: VenueConfig, *, name: str = "paper", market: RecordedMarket | None = None
    ) -> None:
        self.config = config
        self.name = name
        self.queues = Queues(
            config.queue_model,
            lookback_s=config.queue_lookback_s,
            min_qty=config.queue_min_qty,
            min_trades=config.queue_min_trades,
            market=market,
        )
        self.instruments = {i.symbol: i for i in config.instruments}
        self.accounts: dict[str, LinearAccount] = {}  # by book
        self.marks: dict[str, Decimal] = {}  # one dict, shared by every book's account
        self.orders: dict[str, SimOrder] = {}  # by client id, every order ever accepted
        # The ones still working: the hot loop's list (a bar driver skips bars while it is empty).
        self.working: dict[str, SimOrder] = {}
        self.by_exchange_id: dict[str, SimOrder] = {}
        self.last_price: dict[str, Decimal] = {}
        self.last_side: dict[str, int] = {}  # taker side of the last trade, per symbol
        self._seq: dict[str, int] = {}  # per book: ids never depend on other books

    # -- books ------------------------------------------------------------------------------
    def book(self, book: str = "") -> LinearAccount:
        """The account of one book (created on first use with the configured balance)."""
        account = self.accounts.get(book)
        if account is None:
            cfg = self.config
            account = LinearAccount(cfg.coin, cfg.initial_balance, cfg.leverage)
            account.marks = self.marks
            self.accounts[book] = account
        return account

    @property
    def account(self) -> LinearAccount:
        """The default book's account (the only one on the fake Bybit)."""
        return self.book("")

    # -- orders ---------------------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument:
        return find_instrument(self.instruments, symbol)

    def submit(self, request: OrderRequest, now_ns: int, book: str = "") -> tuple[Order, bool]:
        """Accept an order (idempotent on client id): ``(order, created)``; raises refusals."""
        existing = self.orders.get(request.client_id)
        if existing is not None:
            return existing.snapshot(), False
        instrument = self.instrument(request.symbol)
        last = self.last_price.get(request.symbol)
        req = prepare_order(instrument, request, last)
        self._check_reduce_only(req, book)
        if not req.reduce_only:
            self._check_margin(req, last, book)
        seq = self._seq.get(book, 0) + 1
        self._seq[book] = seq
        order = SimOrder(
            request=req,
            exchange_id=uuid5_text(f"{self.name}/{book}/{seq}/{req.client_id}"),
            seq=seq,
            created_ns=now_ns,
            arrival_ns=now_ns + self._latency_ns(),
            book=book,
        )
        self.orders[req.client_id] = order
        self.working[req.client_id] = order
        self.by_exchange_id[order.exchange_id] = order
        return order.snapshot(), True

    def restore(self, working: WorkingOrder, book: str, resume_ns: int) -> None:
        """After a restart: work an order of the venue's previous life again (idempotent on the
        client id), with what had filled of it, on the trades from ``resume_ns`` on (the ones
        before were seen by that life). A limit that had arrived rests again at its price; its
        place in the queue died with that life, so only trades through its price fill it."""
        req = working.request
        if req.client_id in self.orders:
            return
        if working.price is not None:
            req = replace(req, price=working.price)
        seq = self._seq.get(book, 0) + 1
        self._seq[book] = seq
        arrival = working.sent_ns + self._latency_ns()
        order = SimOrder(
            request=req,
            exchange_id=working.exchange_id
            or str(uuid.uuid5(_IDS, f"{self.name}/{book}/restored/{req.client_id}")),
            seq=seq,
            created_ns=working.sent_ns,
            arrival_ns=max(arrival, resume_ns),
            status=OrderStatus.PARTIALLY_FILLED if working.filled_qty else OrderStatus.NEW,
            filled_qty=working.filled_qty,
            cum_value=working.cum_value,
            cum_fee=working.cum_fee,
            updated_ns=working.sent_ns,
            book=book,
        )
        if req.order_type is OrderType.LIMIT and arrival < resume_ns:
            order.phase = "maker"
        self.orders[req.client_id] = order
        self.working[req.client_id] = order
        self.by_exchange_id[order.exchange_id] = order

    def _latency_ns(self) -> int:
        return int(self.config.latency_ms * 1_000_000)

    def find(self, *, client_id: str | None = None, exchange_id: str | None = None) -> SimOrder:
        order = None
        if client_id:
            order = self.orders.get(client_id)
        elif exchange_id:
            order = self.by_exchange_id.get(exchange_id)
        if order is None:
            raise OrderNotFoundError("Order does not exist", code=ORDER_NOT_FOUND)
        return order

    def cancel(
        self, now_ns: int, *, client_id: str | None = None, exchange_id: str | None = None
    ) -> Order:
        order = self.find(client_id=client_id, exchange_id=exchange_id)
        if not order.status.is_open:
            # Bybit answers a cancel of a finished order with "does not exist".
            raise OrderNotFoundError("Order does not exist", code=ORDER_NOT_FOUND)
        order.pending = None
        order.close(OrderStatus.CANCELLED, now_ns, cancel_type="CancelByUser")
        self.working.pop(order.request.client_id, None)
        return order.snapshot()

    def amend(
        self,
        now_ns: int,
        *,
        client_id: str | None = None,
        exchange_id: str | None = None,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        """Change a working limit order's price and/or total quantity (Bybit ``amend``).

        The amendment arrives ``latency_ms`` later; until then the order keeps working on its
        old terms (a trade through the old price still fills it). It then re-arrives: its
        price is checked against the tape again (a PostOnly that would now cross is
        cancelled). Returns the order as it stands now; the change shows when it lands."""
        order = self.find(client_id=client_id, exchange_id=exchange_id)
        if not order.status.is_open:
            raise OrderNotFoundError(
                "order not exists or too late to replace", code=ORDER_NOT_FOUND
            )
        req = order.request
        if req.order_type is not OrderType.LIMIT:
            raise InvalidOrderError(
                "params error: only limit orders can be amended", code=PARAMS_ERROR
            )
        if qty is None and price is None:
            raise InvalidOrderError(
                "params error: nothing to amend (qty or price)", code=PARAMS_ERROR
            )
        base_qty, base_price = order.pending[1:] if order.pending else (req.qty, req.price)
        new = replace(
            req,
            qty=base_qty if qty is None else qty,
            price=base_price if price is None else price,
        )
        new = prepare_order(self.instrument(req.symbol), new, self.last_price.get(req.symbol))
        if new.qty <= order.filled_qty:
            raise InvalidOrderError(
                f"params error: qty {new.qty} must exceed the filled qty {order.filled_qty}",
                code=PARAMS_ERROR,
            )
        order.pending = (now_ns + self._latency_ns(), new.qty, new.price)
        return order.snapshot()

    def open_orders(self, symbol: str | None = None, book: str | None = None) -> list[Order]:
        return [
            o.snapshot()
            for o in self.working.values()
            if o.status.is_open
            and (symbol is None or o.request.symbol == symbol)
            and (book is None or o.book == book)
        ]

    def order_margin(self, book: str = "") -> Decimal:
        total = ZERO
        account = self.book(book)
        for o in self.working.values():
            if o.status.is_open and not o.request.reduce_only and o.book == book:
                price = o.request.price or self.last_price.get(o.request.symbol, ZERO)
                opening = account.opening_qty(o.request.symbol, o.request.side, o.remaining)
                total += opening * price / self.config.leverage
        return total

    def _check_reduce_only(self, req: OrderRequest, book: str) -> None:
        if not req.reduce_only:
            return
        pos = self.book(book).position_state(req.symbol).qty
        if pos == 0:
            raise OrderRejectedError(
                "current position is zero, cannot fix reduce-only order qty", code=110017
            )
        if (pos > 0) == (req.side is Side.BUY):
            raise OrderRejectedError("Reduce-only rule not satisfied", code=110017)

    def _check_margin(self, req: OrderRequest, last: Decimal | None, book: str) -> None:
        price = req.price if req.price is not None else last
        if price is None:
            raise OrderRejectedError(
                f"no trade seen yet for {req.symbol}: a market order cannot be priced"
            )
        account = self.book(book)
        opening = account.opening_qty(req.symbol, req.side, req.qty)
        need = opening * price / self.config.leverage + req.qty * price * self.config.taker_fee
        available = account.available(self.order_margin(book))
        if need > available:
            raise InsufficientBalanceError(
                f"ab not enough for new order (needs {need:.4f}, available {available:.4f} "
                f"{self.config.coin})",
                code=110007,
            )

    # -- matching -------------------------------------------------------------------------
    def on_trades(self, trades: Sequence[Trade]) -> list[Order | Execution]:
        """Match open orders against new tape trades; returns order updates and executions."""
        events: list[Order | Execution] = []
        if not self.working:
            # Nothing can fill: only the last price (and side) per symbol matters.
            last: dict[str, Trade] = {}
            for trade in trades:
                last[trade.symbol] = trade
            self.queues.observe_quiet(trades)
            for trade in last.values():
                self._mark(trade, to_decimal(trade.price))
            return events
        for trade in trades:
            price = to_decimal(trade.price)
            self.queues.before(trade, self.working.values())
            if self.working:
                self._match_trade(trade, price, events)
            self._mark(trade, price)
            self.queues.observe(trade)
        return events

    def _mark(self, trade: Trade, price: Decimal) -> None:
        self.last_price[trade.symbol] = price
        self.last_side[trade.symbol] = trade.side
        self.marks[trade.symbol] = price

    def _match_trade(self, trade: Trade, price: Decimal, events: list[Order | Execution]) -> None:
        size = to_decimal(trade.size)
        shared = self.config.liquidity is Liquidity.SHARED
        left: dict[str, Decimal] = {}  # the trade's size still free, per book (or "" shared)
        ref = self.last_price.get(trade.symbol, price)
        ref_side = self.last_side.get(trade.symbol, 0)
        touched = False  # did any order get past the hot path (and maybe close)?
        at_level = self.queues.at_level_matters
        for order in list(self.working.values()):
            req = order.request
            if req.symbol != trade.symbol or trade.ts < order.arrival_ns:
                continue
            if order.pending is not None and trade.ts >= order.pending[0]:
                self._land_amendment(order)
                req = order.request
                events.append(order.snapshot())
            # Hot path: a resting limit the trade does not reach (at its price only the queue
            # models care; under "none" only a trade through it counts).
            if order.phase == "maker" and req.price is not None:
                away = price > req.price if req.side is Side.BUY else price < req.price
                if away or (price == req.price and not at_level):
                    continue
            touched = True
            first = not order.phase
            if first:
                order.phase = self._phase(req, ref, ref_side, order.arrival_ns)
                if self._post_only_takes(order, trade.ts, events):
                    continue
                if order.phase == "maker":
                    self.queues.join(order, order.arrival_ns)
            key = "" if shared else order.book
            available = left.get(key, size)
            fills, maker, walked = self._match(order, trade, price, size, available)
            fills = _lots(fills, self.instruments[req.symbol].qty_step)
            qty = sum((q for q, _ in fills), ZERO)
            if req.reduce_only:
                reducible = self._reducible(req, order.book)
                if reducible == 0:
                    order.pending = None
                    order.close(OrderStatus.CANCELLED, trade.ts, cancel_type="CancelByReduceOnly")
                    events.append(order.snapshot())
                    continue
                qty = min(qty, reducible)
                fills = _trim(fills, qty)
            immediate = req.order_type is OrderType.LIMIT and req.time_in_force in (
                TimeInForce.IOC,
                TimeInForce.FOK,
            )
            if immediate and req.time_in_force is TimeInForce.FOK and qty < order.remaining:
                qty, fills = ZERO, []
            if qty > 0:
                if not walked:  # a walk of the recorded book leaves the trade's size alone
                    left[key] = available - qty
                for k, (q, fill_price) in enumerate(fills):
                    events.append(self._execute(order, trade, q, fill_price, maker, k))
            if immediate and first and order.status.is_open:
                order.close(OrderStatus.CANCELLED, trade.ts, cancel_type="CancelByUser")
                events.append(order.snapshot())
        if touched:
            for cid in [cid for cid, o in self.working.items() if not o.status.is_open]:
                del self.working[cid]

    @staticmethod
    def _post_only_takes(order: SimOrder, ts_ns: int, events: list[Order | Execution]) -> bool:
        """A PostOnly order that would take on arrival is cancelled instead (True)."""
        if order.phase != "taker" or order.request.time_in_force is not TimeInForce.POST_ONLY:
            return False
        order.pending = None
        order.close(
            OrderStatus.CANCELLED,
            ts_ns,
            cancel_type="CancelByUser",
            reason="EC_PostOnlyWillTakeLiquidity",
        )
        events.append(order.snapshot())
        return True

    @staticmethod
    def _land_amendment(order: SimOrder) -> None:
        assert order.pending is not None
        arrival, qty, price = order.pending
        order.pending = None
        order.request = replace(order.request, qty=qty, price=price)
        order.arrival_ns = arrival
        order.phase = ""  # re-arrives: crossing (and PostOnly) is judged again
        order.queue = None  # ...and joins the back of its (new) level's queue
        order.updated_ns = max(order.updated_ns, arrival)

    def _phase(self, req: OrderRequest, ref: Decimal, ref_side: int, arrival_ns: int) -> str:
        if req.order_type is OrderType.MARKET:
            return "taker"
        assert req.price is not None
        buy = req.side is Side.BUY
        book = self.queues.book
        best = book.levels(ASK if buy else BID, arrival_ns)[:1] if book is not None else []
        if best:  # a recorded book: crossing is reaching the other side's best price
            other = to_decimal(best[0][0])
            return "taker" if (req.price >= other if buy else req.price <= other) else "maker"
        beyond = req.price > ref if buy else req.price < ref
        # At the last price: the touch on our side if the last taker came from the other
        # side (a sell hit the bid there); otherwise (same side or unknown) it would take.
        at = req.price == ref and ref_side != (SELL if buy else BUY)
        return "taker" if beyond or at else "maker"

    def _match(
        self, order: SimOrder, trade: Trade, price: Decimal, size: Decimal, available: Decimal
    ) -> tuple[list[tuple[Decimal, Decimal]], bool, bool]:
        """The (qty, price) fills this trade gives the order (none: nothing), is_maker, and
        whether they come from the recorded book rather than from the trade."""
        req = order.request
        buy = req.side is Side.BUY
        limit = req.price
        room = min(order.remaining, available)
        if room <= 0:
            return [], False, False
        if order.phase == "taker" and self.queues.takers_walk_book:
            # Once, at arrival: the book as it stood then. A limit's rest then rests at its
            # price; a market order's rest takes from the tape's later trades ("tape").
            walked = self._walk_book(order)
            order.phase = "tape" if limit is None else "maker"
            if limit is not None:
                self.queues.join(order, trade.ts)
            if walked:
                return walked, False, True
        if order.phase in ("taker", "tape"):
            if limit is not None and (price > limit if buy else price < limit):
                order.phase = "maker"  # the market moved away: the rest now rests at its price
                self.queues.join(order, trade.ts)
            else:
                same_side = trade.side in (BUY if buy else SELL, 0)
                return ([(room, price)] if same_side else []), False, False
        assert limit is not None
        qty = self.queues.fill(order, trade, price, size, room)
        return ([(qty, limit)] if qty > 0 else []), True, False

    def _walk_book(self, order: SimOrder) -> list[tuple[Decimal, Decimal]]:
        """A taker against the recorded book as it stood when the order arrived: the other
        side's levels, best first, within its limit, until filled (what the book shows)."""
        book = self.queues.book
        assert book is not None
        req = order.request
        buy = req.side is Side.BUY
        need = order.remaining
        step = self.instruments[req.symbol].qty_step
        fills: list[tuple[Decimal, Decimal]] = []
        for px, sz in book.levels(ASK if buy else BID, order.arrival_ns):
            level = to_decimal(px)
            if need <= 0 or (
                req.price is not None and (level > req.price if buy else level < req.price)
            ):
                break
            qty = _lot(min(need, to_decimal(sz)), step)  # whole lots level by level
            if qty <= 0:
                continue
            fills.append((qty, level))
            need -= qty
        return fills

    # -- matching bars (klines, no tape) --------------------------------------------------
    def mark(self, symbol: str, price: Decimal) -> None:
        """The last price of ``symbol`` without a trade (a bar's close): what prices a market
        order's margin and marks every book, as a trade would."""
        self.last_price[symbol] = price
        self.marks[symbol] = price

    def on_bar(self, bar: Bar, symbol: str) -> list[Order | Execution]:
        """Match the working orders of ``symbol`` against one bar (the bar fill rule in the
        module's docstring); the bar's close becomes the last price. Returns order updates and
        executions, like :meth:`on_trades`."""
        events: list[Order | Execution] = []
        if self.working:
            open_ = to_decimal(bar.open)
            for order in list(self.working.values()):
                if order.request.symbol != symbol or bar.ts < order.arrival_ns:
                    continue
                if order.pending is not None and bar.ts >= order.pending[0]:
                    self._land_amendment(order)  # a bar is the model's smallest step
                    events.append(order.snapshot())
                self._match_bar(order, bar, open_, events)
                if not order.status.is_open:
                    del self.working[order.request.client_id]
        self.mark(symbol, to_decimal(bar.close))
        return events

    def _match_bar(
        self, order: SimOrder, bar: Bar, open_: Decimal, events: list[Order | Execution]
    ) -> None:
        req = order.request
        buy = req.side is Side.BUY
        first = not order.phase
        if first:
            # Judged once against the open: a limit at or beyond it would take there.
            takes = req.price is None or (req.price >= open_ if buy else req.price <= open_)
            order.phase = "taker" if req.order_type is OrderType.MARKET or takes else "maker"
            if self._post_only_takes(order, bar.ts, events):
                return
        price: Decimal | None = None
        maker = order.phase == "maker"
        if not maker:
            slip = self.config.slippage_bps * BPS
            price = open_ * (1 + slip if buy else 1 - slip)
            if req.price is not None:
                price = min(price, req.price) if buy else max(price, req.price)
        elif req.price is not None and (
            to_decimal(bar.low) < req.price if buy else to_decimal(bar.high) > req.price
        ):
            price = req.price  # traded through: a touch is not enough (the queue is unknown)
        qty = ZERO if price is None else self._bar_room(order, bar)
        if req.reduce_only:
            can = self._reducible(req, order.book)
            if can == 0:  # the venue's one reduce-only rule, as on the tape
                order.close(OrderStatus.CANCELLED, bar.ts, cancel_type="CancelByReduceOnly")
                events.append(order.snapshot())
                return
            qty = min(qty, can)
        immediate = req.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
        if req.time_in_force is TimeInForce.FOK and qty < order.remaining:
            qty = ZERO
        if qty > 0 and price is not None:
            exec_id = uuid5_text(f"{order.exchange_id}/bar/{bar.ts}")
            rate = self.config.maker_fee if maker else self.config.taker_fee
            events.append(
                execute(self.book(order.book), order, qty, price, rate, maker, bar.ts, exec_id)
            )
        if first and immediate and order.status.is_open:
            order.close(OrderStatus.CANCELLED, bar.ts, cancel_type="CancelByUser")
            events.append(order.snapshot())
        elif req.order_type is OrderType.LIMIT:
            order.phase = "maker"  # what a crossing limit did not get now rests at its price

    def _bar_room(self, order: SimOrder, bar: Bar) -> Decimal:
        cap = self.config.max_volume_fraction
        if cap is None:
            return order.remaining
        instrument = self.instrument(order.request.symbol)
        return min(order.remaining, instrument.round_qty(to_decimal(bar.volume) * cap))

    def _reducible(self, req: OrderRequest, book: str) -> Decimal:
        return reducible(self.book(book), req)

    def _execute(
        self, order: SimOrder, trade: Trade, qty: Decimal, price: Decimal, maker: bool, k: int = 0
    ) -> Execution:
        key = f"{order.exchange_id}/{trade.trade_id}" + (f"/{k}" if k else "")
        exec_id = str(uuid.uuid5(_IDS, key))
        rate = self.config.maker_fee if maker else self.config.taker_fee
        return execute(self.book(order.book), order, qty, price, rate, maker, trade.ts, exec_id)


def _lots(fills: list[tuple[Decimal, Decimal]], step: Decimal) -> list[tuple[Decimal, Decimal]]:
    """Fills in whole lots of the instrument, as a venue fills (a recorded trade or level of
    0.12345 BTC gives 0.123): the part below a lot is not filled, so no position is left with
    dust no order could close."""
    out = [(_lot(q, step), p) for q, p in fills]
    return [(q, p) for q, p in out if q > 0]


def _lot(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(ROUND_FLOOR) * step


def _trim(fills: list[tuple[Decimal, Decimal]], qty: Decimal) -> list[tuple[Decimal, Decimal]]:
    """The first ``qty`` of a list of (qty, price) fills."""
    out: list[tuple[Decimal, Decimal]] = []
    for q, p in fills:
        if qty <= 0:
            break
        out.append((min(q, qty), p))
        qty -= min(q, qty)
    return out


def reducible(account: LinearAccount, req: OrderRequest) -> Decimal:
    """How much of ``req`` would close the book's position (the rest opens or adds)."""
    pos = account.position_state(req.symbol).qty
    opposite = (pos > 0 and req.side is Side.SELL) or (pos < 0 and req.side is Side.BUY)
    return abs(pos) if opposite else ZERO


def execute(
    account: LinearAccount,
    order: SimOrder,
    qty: Decimal,
    price: Decimal,
    rate: Decimal,
    maker: bool,
    ts_ns: int,
    exec_id: str,
) -> Execution:
    """Fill ``qty`` of ``order`` at ``price`` into its book's account (the tape and the bar
    venues share this: fee, realised P&L, the closed part and the fill record)."""
    req = order.request
    fee = qty * price * rate
    closed = min(qty, reducible(account, req))
    realised = account.apply_fill(req.symbol, req.side, qty, price, fee)
    order.add_fill(qty, price, fee, ts_ns)
    fill = Fill(
        exec_id=exec_id,
        client_id=req.client_id,
        exchange_id=order.exchange_id,
        symbol=req.symbol,
        side=req.side,
        price=price,
        qty=qty,
        fee=fee,
        is_maker=maker,
        ts_ns=ts_ns,
    )
    return Execution(fill, order.snapshot(), rate, realised, closed)
