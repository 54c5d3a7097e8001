"""Queue position of resting limit orders: how much must trade at an order's price before it
fills (docs/exchange.md, "Queue position"). Composed into :class:`~.venue.SimVenue`.

A resting order joins the back of its price level. Under every model but ``none`` a trade fills
it only after the size *ahead* of it has traded, like hftbacktest's ``RiskAverseQueueModel``:

- ``tape`` (default, no book needed): the size ahead when the order joins is *estimated from the
  tape*: everything that printed at its price against its side (sellers hitting a bid, buyers
  lifting an ask, or an unknown taker) in the window before it joined (if nothing printed there:
  the most that printed at any one price against that side in it), and at least
  ``queue_min_qty``. The window is the last ``queue_lookback_s`` or the last
  ``queue_min_trades`` prints, whichever reaches further back, so a sparse tape's window is
  never empty. The level is assumed to hold again what the tape just took from it.
- ``l2``: the size *displayed* at its price in the recorded book when it joins (0 when it
  improves on the best price: nobody is ahead), the tape estimate where the book says nothing;
  afterwards never more than the level now displays (what left it was ahead of us, at best).
- ``l3``: the exact FIFO position from the recorded order events: the orders resting at its
  price when it joined. Each one's cancels and fills move it forward; once none is left, every
  recorded fill of a resting order at or behind its price (a maker fill there) would have been
  its fill instead, and fills it at the next trade.

Under ``tape`` and ``l2`` the queue ahead only shrinks by trades at the price against the
order's side, or by trades *through* the price (any side): such a trade first pays off the queue
ahead with its size, and only the rest fills the order. Cancels are assumed behind the order. A
trade at the price on the order's own side (a buyer lifting asks there) says nothing about it
and fills nothing. ``none`` is the old rule: no queue, only trades strictly through the price
fill, up to their size.

Taker orders follow :func:`taker_rule`: with a recorded book (L2) they walk its levels, under
every queue model; without one they take from the tape. A run records both rules
(:func:`fill_rules`) and its report prints them (:func:`queue_note`, :func:`taker_note`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum

from cryptoarena.data.book_replay import ASK, BID, CREATED, DELETED, OrderEvents, RecordedMarket
from cryptoarena.data.records import BUY, NS_PER_S, SELL, Trade
from cryptoarena.trading.exchange.models import Side
from cryptoarena.trading.exchange.sim_order import ZERO, QueueSpot, SimOrder

logger = logging.getLogger(__name__)


class QueueModel(StrEnum):
    NONE = "none"
    TAPE = "tape"
    L2 = "l2"
    L3 = "l3"


# What each model assumes, in one line for the run's report (docs/exchange.md).
_ASSUMES = {
    QueueModel.NONE: "no queue: only trades through a quote fill it, all of their size (optimistic)",
    QueueModel.TAPE: "the tape's recent size at a quote's price is ahead of it (conservative)",
    QueueModel.L2: "the recorded book's displayed size at a quote's price is ahead of it",
    QueueModel.L3: "exact FIFO position from the recorded order events",
}


class TakerRule(StrEnum):
    """How taker orders (market orders, crossing limits) fill: on the tape's later trades, or
    by walking the recorded book when the replay has one (docs/exchange.md)."""

    TAPE = "tape"
    BOOK = "book"


_TAKES = {
    TakerRule.TAPE: "on the tape's later trades from their side, each at its price and size",
    TakerRule.BOOK: "walk the recorded book{book} as it stood at arrival, level by level "
    "(VWAP beyond the touch)",
}


def taker_rule(market: RecordedMarket | None) -> TakerRule:
    """Takers walk the recorded book whenever the replay has one (L2 snapshots)."""
    return TakerRule.BOOK if market is not None and market.l2 is not None else TakerRule.TAPE


def missing_book(model: QueueModel, market: RecordedMarket | None) -> str | None:
    """Why ``model`` cannot run on ``market`` (None: it can): l2 needs recorded snapshots, l3
    recorded order events."""
    if model is QueueModel.L2 and (market is None or market.l2 is None):
        return "queue_model 'l2' needs a recorded book (L2 snapshots)"
    if model is QueueModel.L3 and (market is None or market.l3 is None):
        return "queue_model 'l3' needs recorded order events (L3)"
    return None


def fill_rules(
    model: QueueModel,
    market: RecordedMarket | None,
    lookback_s: float,
    min_qty: Decimal,
    *,
    min_trades: int,
) -> dict[str, object]:
    """What a run records about its fills (and a report prints): the queue model and its
    parameters, the recorded book if any, and the taker rule that book implies."""
    doc: dict[str, object] = {"queue_model": model.value}
    if model in (QueueModel.TAPE, QueueModel.L2):
        doc["queue_lookback_s"] = lookback_s
        doc["queue_min_trades"] = min_trades
        doc["queue_min_qty"] = str(min_qty)
    doc["taker_fills"] = taker_rule(market).value
    doc["book"] = f"{market.name} ({market.depth})" if market is not None else None
    return doc


def taker_note(fills: object) -> str:
    """The report's line on how taker orders were filled (``fills``: the run record's
    ``fills`` section; missing on runs recorded before book replays, which used the tape)."""
    rule = fills.get("taker_fills") if isinstance(fills, dict) else None
    book = fills.get("book") if isinstance(fills, dict) else None
    try:
        known = TakerRule(str(rule)) if rule is not None else TakerRule.TAPE
    except ValueError:
        return f"taker fills {rule!r}: unknown"
    old = " (recorded before book replays)" if rule is None else ""
    on = f" ({book})" if book else ""
    return f"taker fills {known.value}{old}: " + _TAKES[known].format(book=on)


def queue_note(model: object, fills: object = None) -> str:
    """The report's line on how resting orders were filled (``model``: the run record's
    ``queue_model``, missing on runs recorded before queue models, which had none; ``fills``:
    its ``fills`` section, whose window of the tape estimate the line states when recorded)."""
    try:
        known = QueueModel(str(model)) if model is not None else QueueModel.NONE
    except ValueError:
        return f"queue model {model!r}: unknown"
    old = " (recorded before queue models)" if model is None else ""
    note = f"queue model {known.value}{old}: {_ASSUMES[known]}"
    lookback = fills.get("queue_lookback_s") if isinstance(fills, dict) else None
    if known in (QueueModel.TAPE, QueueModel.L2) and lookback is not None:
        assert isinstance(fills, dict)
        where = "where the book shows nothing, " if known is QueueModel.L2 else ""
        trades = fills.get("queue_min_trades")  # absent: recorded before the trade-count window
        span = f"the last {lookback:g} s" + (
            f" or the last {trades} prints, whichever reaches further back" if trades else ""
        )
        note += f"; {where}the tape estimate reads {span}"
        if Decimal(str(fills.get("queue_min_qty", 0))) > 0:
            note += f", at least {fills['queue_min_qty']} ahead"
    return note


def _dec(value: float) -> Decimal:
    return Decimal(str(value))


class TapeMemory:
    """The recent tape, per symbol: (ts, price, taker side, size). The window is the last
    ``lookback_s`` *or* the last ``min_trades`` prints, whichever reaches further back: on a
    sparse tape (a print every 20-40 s) a fixed 10 s window is mostly empty, and an empty
    window would put nothing ahead of a quote (docs/exchange.md, "the tape estimate")."""

    def __init__(self, lookback_s: float, min_trades: int) -> None:
        self.window_ns = int(lookback_s * NS_PER_S)
        self.min_trades = min_trades
        self._trades: dict[str, deque[tuple[int, float, int, float]]] = {}

    def add(self, trade: Trade) -> None:
        # The window's rule lives in add_many alone (one trade: ~0.1 µs more than inlined).
        self.add_many((trade,))

    def add_many(self, trades: Iterable[Trade]) -> None:
        """Each trade into its symbol's tape, in order (a quiet venue's whole batch at once),
        each time dropping the prints older than the window before it, but never below the last
        ``min_trades`` prints: the window's one rule (:meth:`add` is this for one trade)."""
        by_symbol = self._trades
        window_ns, keep = self.window_ns, self.min_trades
        q: deque[tuple[int, float, int, float]] | None = None
        symbol = None
        for trade in trades:
            if trade.symbol != symbol or q is None:
                symbol = trade.symbol
                q = by_symbol.get(symbol)
                if q is None:
                    q = by_symbol[symbol] = deque()
            ts = trade.ts
            q.append((ts, trade.price, trade.side, trade.size))
            horizon = ts - window_ns
            while len(q) > keep and q[0][0] < horizon:
                q.popleft()

    def printed_against(self, symbol: str, side: Side, price: float, now_ns: int) -> float:
        """Size that printed at ``price`` against a resting order on ``side`` (or with an unknown
        taker) within the window before ``now_ns`` (the lookback, or the last ``min_trades``
        prints if they reach further back); if nothing printed there, the most that printed at
        any one price against that side (the level is taken to be like its neighbours; 0 on a
        silent tape)."""
        against = SELL if side is Side.BUY else BUY
        q = self._trades.get(symbol, ())
        horizon = now_ns - self.window_ns
        oldest_kept = len(q) - self.min_trades  # the last min_trades count whatever their age
        by_price: dict[float, float] = {}
        for i, (ts, px, taker, size) in enumerate(q):
            if (ts >= horizon or i >= oldest_kept) and taker in (against, 0):
                by_price[px] = by_price.get(px, 0.0) + size
        return by_price.get(price) or max(by_price.values(), default=0.0)


class Queues:
    """One queue model for a venue's resting orders. Deterministic: a function of the tape
    (and the recorded book) and of the order alone, never of another book's orders."""

    def __init__(
        self,
        model: QueueModel,
        *,
        lookback_s: float,
        min_qty: Decimal,
        min_trades: int,
        market: RecordedMarket | None = None,
    ) -> None:
        missing = missing_book(model, market)
        if missing is not None:
            raise ValueError(f"{missing} for the replay")
        self.model = model
        self.min_qty = min_qty
        self.lookback_s = lookback_s
        self.market = market
        self.book = market.l2 if market is not None else None
        self.min_trades = min_trades
        self.memory = TapeMemory(lookback_s, min_trades)
        self._l3 = _L3Book(market.l3) if model is QueueModel.L3 and market and market.l3 else None

    @property
    def at_level_matters(self) -> bool:
        """Trades at a resting order's price can move or fill it (all models but ``none``)."""
        return self.model is not QueueModel.NONE

    @property
    def takers_walk_book(self) -> bool:
        """Taker orders walk the recorded book (:func:`taker_rule`)."""
        return taker_rule(self.market) is TakerRule.BOOK

    def describe(self) -> dict[str, object]:
        """What a run records and a report prints."""
        return fill_rules(
            self.model, self.market, self.lookback_s, self.min_qty, min_trades=self.min_trades
        )

    # -- the tape ---------------------------------------------------------------------------
    def before(self, trade: Trade, orders: Iterable[SimOrder]) -> None:
        """Called before ``trade`` is matched: the L3 book replays the events recorded first
        (``orders``: the venue's open orders; one that arrived among those events takes its
        place in the queue as the book stood at its arrival)."""
        if self._l3 is not None:
            waiting = [o for o in orders if not o.phase and o.queue is None and o.request.price]
            self._l3.advance(trade, sorted(waiting, key=lambda o: o.arrival_ns))

    def observe(self, trade: Trade) -> None:
        """Called after ``trade`` was matched (every trade, also with no order open)."""
        if self.model in (QueueModel.TAPE, QueueModel.L2):
            self.memory.add(trade)

    def observe_quiet(self, trades: Iterable[Trade]) -> None:
        """:meth:`before` (with no order open) and :meth:`observe` of every trade, in order:
        the venue's tape with nothing working, in one call."""
        if self._l3 is not None:
            for trade in trades:
                self._l3.advance(trade, [])
                self.observe(trade)
        elif self.model in (QueueModel.TAPE, QueueModel.L2):
            self.memory.add_many(trades)

    # -- orders -----------------------------------------------------------------------------
    def join(self, order: SimOrder, now_ns: int) -> None:
        """The order starts resting at its price now: where it stands in the queue."""
        req = order.request
        assert req.price is not None
        if self.model is QueueModel.NONE:
            order.queue = None
            return
        if self.model is QueueModel.L3:
            assert self._l3 is not None
            if order.queue is None:  # else: placed as the book stood when it arrived
                order.queue = self._l3.join(order)
            return
        price = float(req.price)
        ahead: float | None = None
        if self.model is QueueModel.L2:
            assert self.book is not None
            ahead = self.book.displayed(BID if req.side is Side.BUY else ASK, price, now_ns)
        if ahead is None:
            estimate = self.memory.printed_against(req.symbol, req.side, price, now_ns)
            ahead = max(estimate, float(self.min_qty))
        order.queue = QueueSpot(ahead=_dec(ahead))

    def fill(
        self, order: SimOrder, trade: Trade, price: Decimal, size: Decimal, room: Decimal
    ) -> Decimal:
        """How much of a resting order ``trade`` fills (at most ``room``), after paying off the
        queue ahead of it; ``price`` is the trade's, ``size`` all of it."""
        req = order.request
        limit = req.price
        assert limit is not None
        buy = req.side is Side.BUY
        through = price < limit if buy else price > limit
        spot = order.queue
        if self.model is QueueModel.NONE or spot is None:
            return room if through else ZERO
        if self.model is QueueModel.L3:
            if not (through or price == limit):
                return ZERO
            qty = min(spot.credit, room)
            spot.credit -= qty
            return qty
        against = trade.side in ((SELL if buy else BUY), 0)
        if not (through or (price == limit and against)):
            return ZERO
        if self.model is QueueModel.L2:
            assert self.book is not None
            shown = self.book.displayed(BID if buy else ASK, float(limit), trade.ts)
            if shown is not None and _dec(shown) < spot.ahead:
                spot.ahead = _dec(shown)  # what left the level was ahead of us, at best
        paid = min(spot.ahead, size)
        spot.ahead -= paid
        return max(ZERO, min(room, size - paid))


class _L3Book:
    """The recorded market-by-order book, replayed up to each trade, and the FIFO position of
    the venue's resting orders in it."""

    def __init__(self, events: OrderEvents) -> None:
        self.ev = events
        self._cols = (
            events.ts.tolist(),
            events.pos.tolist(),
            events.kind.tolist(),
            events.oid.tolist(),
            events.side.tolist(),
            events.price.tolist(),
            events.amount.tolist(),
        )
        self.next = 0
        self.live: dict[int, tuple[int, float, float]] = {}  # id → (side, price, open size)
        self.last_created = -1
        self.watch: list[tuple[SimOrder, QueueSpot]] = []

    def advance(self, trade: Trade, waiting: list[SimOrder]) -> None:
        """Apply every event recorded before ``trade`` (by position when the trade message is
        in the recording, else by time); ``waiting`` orders (by arrival) join the queue just
        before the first event after their arrival."""
        pos = self.ev.trade_pos.get(trade.trade_id)
        ts_col, pos_col = self._cols[0], self._cols[1]
        n = len(ts_col)
        i = self.next
        k = 0
        while i < n and (pos_col[i] < pos if pos is not None else ts_col[i] <= trade.ts):
            while k < len(waiting) and waiting[k].arrival_ns < ts_col[i]:
                waiting[k].queue = self.join(waiting[k])
                k += 1
            self._apply(i)
            i += 1
        self.next = i

    def join(self, order: SimOrder) -> QueueSpot:
        req = order.request
        assert req.price is not None
        side = BID if req.side is Side.BUY else ASK
        price = float(req.price)
        ahead = {
            oid: _dec(size)
            for oid, (s, p, size) in self.live.items()
            if s == side and p == price and size > 0
        }
        spot = QueueSpot(ahead=sum(ahead.values(), ZERO), ahead_ids=ahead)
        self.watch = [(o, s) for o, s in self.watch if o is not order and o.status.is_open]
        self.watch.append((order, spot))
        return spot

    def _apply(self, i: int) -> None:
        _, _, kind, oid, side, price, amount = (col[i] for col in self._cols)
        if kind == CREATED:
            self.live[oid] = (side, price, amount)
            self.last_created = oid
            return
        prev = self.live.get(oid)
        if kind == DELETED:
            self.live.pop(oid, None)
        else:
            self.live[oid] = (side, price, amount)
        if prev is None or not self.watch:
            return
        cancelled = kind == DELETED and amount > 0
        filled = ZERO if cancelled else max(ZERO, _dec(prev[2]) - _dec(amount))
        maker = oid != self.last_created  # the newest order is the taker of its own fills
        for order, spot in self.watch:
            if not order.status.is_open or order.queue is not spot:
                continue
            self._update(order, spot, oid, side, price, amount, cancelled, filled, maker)
        self.watch = [(o, s) for o, s in self.watch if o.status.is_open and o.queue is s]

    @staticmethod
    def _update(
        order: SimOrder,
        spot: QueueSpot,
        oid: int,
        side: int,
        price: float,
        amount: float,
        cancelled: bool,
        filled: Decimal,
        maker: bool,
    ) -> None:
        req = order.request
        mine = BID if req.side is Side.BUY else ASK
        if side != mine:
            return
        assert spot.ahead_ids is not None and req.price is not None
        if oid in spot.ahead_ids:
            before = spot.ahead_ids[oid]
            now = ZERO if cancelled or amount <= 0 else _dec(amount)
            if now > 0:
                spot.ahead_ids[oid] = now
            else:
                del spot.ahead_ids[oid]
            spot.ahead += now - before
            return
        if not (maker and filled > 0) or spot.ahead > 0:
            return  # a fill behind orders still ahead (not FIFO): conservatively not ours
        limit = float(req.price)
        at_or_behind = price <= limit if mine == BID else price >= limit
        if at_or_behind:
            spot.credit += filled
