"""Targets → orders: risk checks, sending, order updates and fills back into books.

Client order ids are ``<run tag>-<strategy index>-<incarnation>-<seq>`` (≤ 36 chars, Bybit's
``orderLinkId`` alphabet): deterministic per run, strategy and sequence, and a restarted worker
gets a new incarnation, so an id is never reused even when the journal lost the last records.
Every id is journaled (``orders``) before it is sent and sent at most once; a temporary error
is retried with the SAME id (the exchange deduplicates), an ambiguous one is resolved by asking.

Exits (an order against the book's position: flatten, kill switch, halt exits, the close half of
a flip) are sent apart from entries: never larger than the position, at most the venue's maximum
order size (a larger exit continues in the next orders), flagged ``reduce_only`` when the venue
position they act on is the book's own direction, and exempt from the limits that guard new
risk. A long→short flip is a reduce-only close now and the new entry, checked on its own, once
the close is done (:meth:`OrderRouter.follow_ups`).

Execution styles (docs/trading.md): a *taker* strategy's orders are market orders. A *maker*
strategy's are PostOnly limits joining the touch (:mod:`cryptoarena.trading.execution.maker_quotes`): while one
rests, a new target on its side re-prices it when the touch moved (amend), a target on the
other side or one the position already meets cancels it (the other side then joins), and a
forecast that went stale (:meth:`OrderRouter.withdraw`) or a quote no target wanted for the
strategy's maker TTL cancels it; the taker timeout does not apply to it. A PostOnly that would
have taken comes back cancelled (``EC_PostOnlyWillTakeLiquidity``); the slot is then free and
the next decision joins again. Exits that must happen (flatten: kill switch, halts, stop) are
market orders whatever the style: a resting quote is cancelled first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptoarena.clock import Clock
from cryptoarena.data.records import NS_PER_S
from cryptoarena.retry import RetryPolicy, retry_async
from cryptoarena.trading.exchange.base import Exchange, account_bindings
from cryptoarena.trading.exchange.errors import (
    AmbiguousOrderError,
    ExchangeError,
    OrderNotFoundError,
    TemporaryExchangeError,
)
from cryptoarena.trading.exchange.models import (
    Instrument,
    Order,
    OrderRequest,
    Side,
)
from cryptoarena.trading.execution.maker_quotes import MakerQuotes, Quote
from cryptoarena.trading.execution.orders import InFlight, order_doc, size_order, unsendable
from cryptoarena.trading.execution.tracking import OrderLedger, Record
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.risk.manager import OrderIntent, RiskManager

logger = logging.getLogger(__name__)

SEND_RETRIES = 3
# Creates retried under the project's one policy (exponential, jittered, retry-after honoured).
SEND_POLICY = RetryPolicy(max_attempts=SEND_RETRIES + 1, initial_s=0.05, max_s=1.0)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The rest of a target an exit could not reach alone (a flip's entry, a split exit)."""

    target: float
    uses_forecast: bool
    decision_id: str | None
    market: bool = False  # the rest of a forced exit stays a market order

    def doc(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "uses_forecast": self.uses_forecast,
            "decision_id": self.decision_id,
            "market": self.market,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> FollowUp:
        return cls(
            float(doc["target"]),
            bool(doc["uses_forecast"]),
            doc.get("decision_id"),
            bool(doc.get("market", False)),
        )


class OrderRouter:
    """Targets to orders: size, check risk, journal, send (retrying a temporary error with the
    same id), cancel what is late. What is known about the orders (ids, owners, in flight,
    fills booked) lives in its :class:`OrderLedger`, which also takes the exchange's updates."""

    def __init__(
        self,
        *,
        exchange: Exchange,
        instrument: Instrument,
        ledger: OrderLedger,
        risk: RiskManager,
        record: Record,
        clock: Clock,
        min_trade_fraction: float,
        order_timeout_s: float,
        inline: bool,
        quotes: MakerQuotes | None = None,
    ) -> None:
        self.ledger = ledger
        self.books: dict[str, Ledger] = ledger.books
        self._record = record
        self.clock = clock
        self.exchange = exchange
        self.instrument = instrument
        self.risk = risk
        self.min_trade_fraction = Decimal(str(min_trade_fraction))
        self.order_timeout_ns = int(order_timeout_s * NS_PER_S)
        self.inline = inline
        self.quotes = quotes or MakerQuotes({}, None)
        self.band_ref: float | None = None  # the last closed 1 s bar's VWAP (set by the worker)
        self.orders_sent = dict.fromkeys(self.books, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        # Live exchanges: make the journaled order durable before it leaves the process; True
        # when it is (database or fsync'd spill). An order whose record is not durable waits,
        # and is vetoed (journaled) after ``durable_wait_s``.
        self.before_send: Callable[[float], Awaitable[bool]] | None = None
        self.durable_wait_s = 10.0
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # injectable for tests
        self.follow: dict[str, FollowUp] = {}
        self.dust: dict[str, tuple[Side, Decimal]] = {}  # the residual last noted, per strategy
        # Books that share one venue position (one paper venue, one Bybit account): reduce-only
        # is only true of an exit when it also reduces that shared position.
        bindings = account_bindings(exchange)
        self.venue_of: dict[str, str] = {name: bindings.get(name, "") for name in self.books}

    def follow_ups(self) -> dict[str, FollowUp]:
        """Strategies with the rest of a target to send, and no order in flight now."""
        return {n: f for n, f in self.follow.items() if n not in self.ledger.in_flight}

    def set_follow(self, strategy: str, follow: FollowUp | None, now_ns: int) -> None:
        """Set (or drop, ``None``) the rest of ``strategy``'s target; every change is journaled
        (``follow_ups``): a restart gives the router back what it still had to send."""
        if self.follow.get(strategy) == follow:
            return
        if follow is None:
            del self.follow[strategy]
        else:
            self.follow[strategy] = follow
        doc = None if follow is None else follow.doc()
        self._record("follow_ups", {"strategy": strategy, "follow_up": doc, "ts_ns": now_ns})

    def resume_order(
        self,
        strategy: str,
        client_id: str,
        side: Side,
        qty: Decimal,
        sent_ns: int,
        price: Decimal | None,
    ) -> None:
        """A restart: an order of an earlier incarnation still works at the venue. It is in
        flight again with its own send time (the timeout counts from there) and, for a maker
        strategy's PostOnly limit at ``price``, it is that strategy's resting quote again."""
        self.ledger.in_flight[strategy] = InFlight(client_id, strategy, side, qty, sent_ns)
        if price is not None and self.quotes.is_maker(strategy):
            self.quotes.rest(strategy, client_id, side, price, sent_ns)

    def _venue_reduces(self, strategy: str, side: Side, qty: Decimal) -> bool:
        venue = self.venue_of[strategy]
        net = sum((b.qty for n, b in self.books.items() if self.venue_of[n] == venue), Decimal(0))
        if side == Side.SELL:
            return net >= qty
        return -net >= qty

    # -- targets to orders ------------------------------------------------------------------
    async def rebalance(
        self,
        strategy: str,
        target: float,
        *,
        price: float,
        now_ns: int,
        last_trade_ns: int | None,
        uses_forecast: bool,
        forecast_age_s: float | None,
        decision_id: str | None,
        market: bool = False,
    ) -> str | None:
        """Move the book toward ``target`` (fraction of equity); returns the client id sent.
        ``market``: a forced exit, a market order even for a maker strategy."""
        maker = self.quotes.is_maker(strategy) and not market
        flight = self.ledger.in_flight.get(strategy)
        quote = self.quotes.active(strategy, flight)
        if quote is not None and price > 0 and not (flight and flight.cancel_requested):
            if maker and await self._requote(strategy, quote, target, price, now_ns):
                return None  # still resting (re-priced if the touch moved)
            if strategy in self.ledger.in_flight:
                why = "forced exit" if market else "the target no longer wants it"
                await self._cancel_quote(strategy, quote, why)
        rest = FollowUp(target, uses_forecast, decision_id, market)
        if strategy in self.ledger.in_flight or price <= 0:
            if strategy in self.follow:  # a newer target replaces the rest of the older one
                self.set_follow(strategy, rest, now_ns)
            return None
        self.set_follow(strategy, None, now_ns)
        book = self.books[strategy]
        if target == 0.0 and book.qty == 0:
            return None  # flat and meant to be: nothing to size (most bars of most books)
        inst = self.instrument
        sized = size_order(book, target, price, inst, self.min_trade_fraction)
        if sized is None:
            return None
        side, qty = sized
        join = self.quotes.join(side, inst) if maker else None
        if maker and join is None:
            return None  # no touch yet (no trade seen): nothing to join
        before = book.qty
        mark = Decimal(str(price))
        reduce_only = folded = False
        exiting = before != 0 and (side == Side.SELL) == (before > 0)
        if exiting:
            # An exit: at most the position, at most the venue's maximum order size; the rest
            # of the target (a flip's entry, the next slice) follows once this one is done.
            exit_qty = min(qty, abs(before), inst.max_qty)
            reduces = self._venue_reduces(strategy, side, exit_qty)
            alone = unsendable(inst, side, exit_qty, limit=join, mark=mark, reduce_only=reduces)
            if exit_qty < qty and alone is not None:
                # A position no order can close alone (a partial fill's residue below the
                # venue's minimum) goes with the entry: one order that flips the book.
                self._note_dust(strategy, side, exit_qty, alone, "closed with the entry", now_ns)
                exiting = False
                folded = True
            else:
                if exit_qty < qty:
                    self.set_follow(strategy, rest, now_ns)
                qty = exit_qty
                reduce_only = reduces
        if not exiting and qty > inst.max_qty:
            # An entry above the venue's maximum: in slices, each checked on its own.
            self.set_follow(strategy, rest, now_ns)
            qty = inst.max_qty
        refused = unsendable(inst, side, qty, limit=join, mark=mark, reduce_only=reduce_only)
        if refused is not None:  # e.g. a maker quote worth less than the minimum at its price
            self._note_dust(strategy, side, qty, refused, "not sent", now_ns)
            return None
        if not folded:
            self.dust.pop(strategy, None)  # a later residual is noted again
        signed = qty if side == Side.BUY else -qty
        after = before + signed
        intent = OrderIntent(
            strategy=strategy,
            side=side.value,
            qty=float(qty),
            price=price,
            position_before=float(book.qty),
            position_after=float(after),
            uses_forecast=uses_forecast,
            forecast_age_s=forecast_age_s,
        )
        gross_after = (
            sum(float(abs(b.qty)) * price for name, b in self.books.items() if name != strategy)
            + abs(float(after)) * price
        )
        veto = self.risk.check(
            intent,
            now_ns=now_ns,
            # The band: the price we size at (the last trade) against the last 1 s VWAP, so a
            # stray print far from where the market traded does not move a book.
            last_trade_price=self.band_ref if self.band_ref is not None else price,
            last_trade_ns=last_trade_ns,
            gross_notional_after=gross_after,
        )
        if veto is not None:
            return None
        cid = self.ledger.next_client_id(strategy)
        if join is not None:
            request = self.quotes.request(
                cid, inst.symbol, side, qty, join, reduce_only=reduce_only
            )
            self.quotes.rest(strategy, cid, side, join, now_ns)
        else:
            request = OrderRequest(
                client_id=cid, symbol=inst.symbol, side=side, qty=qty, reduce_only=reduce_only
            )
        self.ledger.sent.add(cid)
        self.ledger.owner[cid] = strategy
        self.ledger.in_flight[strategy] = InFlight(cid, strategy, side, qty, now_ns)
        self.orders_sent[strategy] += 1
        self.risk.order_sent(strategy, now_ns)
        self._record(
            "orders",
            order_doc(request, strategy, price, target, book.qty, decision_id, now_ns)
            | {"incarnation": self.ledger.incarnation, "seq": self.ledger.seq[strategy]},
        )
        if self.inline:
            await self._send(request)
        else:
            task = asyncio.get_running_loop().create_task(self._send(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return cid

    def _note_dust(
        self, strategy: str, side: Side, qty: Decimal, why: str, action: str, now_ns: int
    ) -> None:
        """A residual the venue would refuse: logged and journaled (``risk_events``, type
        ``dust``) once, not again every bar while the same residual stays."""
        if self.dust.get(strategy) == (side, qty):
            return
        self.dust[strategy] = (side, qty)
        logger.info(
            "%s: %s %s cannot be sent alone (%s): %s", strategy, side.value, qty, why, action
        )
        doc = {"type": "dust", "strategy": strategy, "side": side.value, "qty": str(qty),
               "reason": why, "action": action, "ts_ns": now_ns}  # fmt: skip
        self._record("risk_events", doc)

    async def flatten(
        self, strategy: str, *, price: float, now_ns: int, last_trade_ns: int | None
    ) -> str | None:
        """Target zero for ``strategy`` (kill switch, halt, stop): no forecast, no decision."""
        return await self.rebalance(
            strategy,
            0.0,
            price=price,
            now_ns=now_ns,
            last_trade_ns=last_trade_ns,
            uses_forecast=False,
            forecast_age_s=None,
            decision_id=None,
            market=True,
        )

    async def withdraw(self, strategy: str, why: str) -> None:
        """Cancel the strategy's resting maker quote, if any (its forecast went stale)."""
        quote = self.quotes.active(strategy, self.ledger.in_flight.get(strategy))
        if quote is not None:
            await self._cancel_quote(strategy, quote, why)

    # -- maker quotes -----------------------------------------------------------------------
    async def _requote(
        self, strategy: str, quote: Quote, target: float, price: float, now_ns: int
    ) -> bool:
        """A new target while ``quote`` rests: True if the quote stays (re-priced to the touch
        when it moved), False if the target no longer wants it (cancel it)."""
        inst = self.instrument
        sized = size_order(self.books[strategy], target, price, inst, self.min_trade_fraction)
        if sized is None or sized[0] is not quote.side:
            return False
        quote.wanted_ns = now_ns
        join = self.quotes.join(quote.side, inst)
        if join is None or join == quote.price:
            return True
        try:
            order = await self.exchange.amend_order(inst.symbol, quote.client_id, price=join)
        except OrderNotFoundError:
            return True  # it just filled or was cancelled: its updates say which
        except ExchangeError as exc:
            logger.warning("amend of %s failed (%s): cancelling it", quote.client_id, exc)
            return False
        self._record(
            "order_updates",
            {
                "client_id": quote.client_id,
                "exchange_id": order.exchange_id,
                "strategy": strategy,
                "status": "Amend",
                "price": str(join),
                "previous_price": str(quote.price),
                "ts_ns": now_ns,
            },
        )
        quote.price = join
        return True

    async def _cancel_quote(self, strategy: str, quote: Quote, why: str) -> None:
        flight = self.ledger.in_flight.get(strategy)
        if flight is None or flight.client_id != quote.client_id or flight.cancel_requested:
            return
        flight.cancel_requested = True
        quote.cancel_ns = self.clock.now_ns()
        await self._cancel(flight, f" ({why})" if why else "")

    async def _send(self, request: OrderRequest) -> None:
        cid = request.client_id
        if self.before_send is not None and not await self._durable(cid):
            return
        try:
            # The same client id on every attempt: the venue answers a repeat with the same order.
            order = await retry_async(
                lambda: self.exchange.place_order(request),
                SEND_POLICY,
                TemporaryExchangeError,
                sleep=self.sleep,
                what=f"order {cid}",
            )
        except TemporaryExchangeError as exc:
            self.ledger._failed(cid, f"temporary error, gave up: {exc}")
            return
        except AmbiguousOrderError as exc:
            known = await self._ask(request.symbol, cid)
            if known is None:
                self.ledger._failed(cid, f"ambiguous and not found: {exc}")
            else:
                self.ledger.on_order(known)
            return
        except ExchangeError as exc:
            self.ledger._failed(cid, f"{type(exc).__name__}: {exc}")
            return
        self.ledger.on_order(order)

    async def _durable(self, cid: str) -> bool:
        """Wait (bounded) until the order's journal record is durable; veto it if it never is."""
        assert self.before_send is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.durable_wait_s
        while True:
            if await self.before_send(min(2.0, max(0.05, deadline - loop.time()))):
                return True
            if loop.time() >= deadline:
                break
            logger.warning("order %s waits: its journal record is not durable yet", cid)
        strategy = self.ledger.owner.get(cid)
        reason = f"journal not durable after {self.durable_wait_s:g} s: order not sent"
        self._record(
            "risk_events",
            {
                "type": "veto",
                "strategy": strategy,
                "reason": reason,
                "client_id": cid,
                "ts_ns": self.clock.now_ns(),
            },
        )
        if strategy is not None:
            self.risk.vetoes[strategy] = self.risk.vetoes.get(strategy, 0) + 1
        self.ledger._failed(cid, reason)
        return False

    async def _ask(self, symbol: str, cid: str) -> Order | None:
        try:
            return await self.exchange.get_order(symbol, cid)
        except ExchangeError:
            return None

    async def expire(self, now_ns: int) -> None:
        """Cancel orders in flight for longer than the timeout (a market that stopped trading),
        and maker quotes no target wanted for their strategy's maker TTL."""
        for flight in list(self.ledger.in_flight.values()):
            quote = self.quotes.active(flight.strategy, flight)
            if quote is not None and flight.final is None:
                if flight.cancel_requested:
                    sent = quote.cancel_ns if quote.cancel_ns is not None else now_ns
                    if now_ns - sent >= self.order_timeout_ns:  # it never took: once more
                        flight.cancel_requested = False
                        await self._cancel_quote(flight.strategy, quote, "cancel retried")
                elif self.quotes.unwanted(flight.strategy, quote, now_ns):
                    await self._cancel_quote(flight.strategy, quote, "unwanted for its TTL")
                continue
            if flight.final is not None:
                # Done at the exchange, fills still missing after three timeouts: recover them.
                if now_ns - flight.sent_ns >= 3 * self.order_timeout_ns:
                    logger.warning(
                        "fills of %s never arrived; booking them from the order", flight.client_id
                    )
                    self.ledger.recover_fill(flight.final, now_ns)
                    self.ledger.in_flight.pop(flight.strategy, None)
                continue
            if flight.cancel_requested or now_ns - flight.sent_ns < self.order_timeout_ns:
                continue
            flight.cancel_requested = True
            await self._cancel(flight, "")

    async def cancel_all(self) -> None:
        """Stopping: cancel every order still in flight (it must not fill behind our back)."""
        for flight in list(self.ledger.in_flight.values()):
            await self._cancel(flight, " at stop")

    async def _cancel(self, flight: InFlight, when: str) -> None:
        """Cancel ``flight``; if the cancel fails, what the exchange says about the order."""
        symbol = self.instrument.symbol
        try:
            order = await self.exchange.cancel_order(symbol, flight.client_id)
        except ExchangeError as exc:
            known = await self._ask(symbol, flight.client_id)
            if known is None:
                logger.warning("cancel of %s%s failed: %s", flight.client_id, when, exc)
                return
            order = known
        self.ledger.on_order(order)

    async def drain(self, timeout_s: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)
