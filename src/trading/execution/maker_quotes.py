"""Maker quotes: which strategies execute as makers, the quote each one has resting, and the
touch their quotes join. Composed into :class:`cryptoarena.trading.execution.router.OrderRouter`, which
decides *when* to place, amend or cancel; this part only knows *what* a quote is.

A maker strategy's target becomes a PostOnly limit at the touch in the target's direction (the
bid for a buy, the ask for a sell, from :class:`TapeTouch`). A quote is *wanted* while targets
keep asking for its side; one that no target has wanted for the strategy's ``maker_ttl_ns`` is
cancelled (the forecast behind it is gone). Resting quotes are exempt from the taker timeout
(``order_timeout_s``): waiting is what a maker order is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cryptoarena.trading.exchange.models import (
    Instrument,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.touch import TapeTouch
from cryptoarena.trading.execution.orders import InFlight


@dataclass
class Quote:
    client_id: str
    side: Side
    price: Decimal
    wanted_ns: int  # the last time a target asked for this side (placed, amended, confirmed)
    cancel_ns: int | None = None  # when its cancel was sent (retried if it never takes)


class MakerQuotes:
    def __init__(self, ttl_ns: dict[str, int], touch: TapeTouch | None) -> None:
        self.ttl_ns = ttl_ns  # maker strategies only: name → how long an unwanted quote rests
        self.touch = touch
        self.resting: dict[str, Quote] = {}

    def is_maker(self, strategy: str) -> bool:
        return strategy in self.ttl_ns

    def active(self, strategy: str, flight: InFlight | None) -> Quote | None:
        """The strategy's quote if it is the order in flight now (it forgets finished ones)."""
        quote = self.resting.get(strategy)
        if quote is None:
            return None
        if flight is None or flight.client_id != quote.client_id:
            del self.resting[strategy]
            return None
        return quote

    def join(self, side: Side, instrument: Instrument) -> Decimal | None:
        """The price a quote on ``side`` joins at now (None before the first trade)."""
        return self.touch.join(side, instrument) if self.touch is not None else None

    def request(
        self,
        client_id: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        *,
        reduce_only: bool,
    ) -> OrderRequest:
        return OrderRequest(
            client_id=client_id,
            symbol=symbol,
            side=side,
            qty=qty,
            order_type=OrderType.LIMIT,
            price=price,
            time_in_force=TimeInForce.POST_ONLY,
            reduce_only=reduce_only,
        )

    def rest(self, strategy: str, client_id: str, side: Side, price: Decimal, now_ns: int) -> None:
        self.resting[strategy] = Quote(client_id, side, price, now_ns)

    def unwanted(self, strategy: str, quote: Quote, now_ns: int) -> bool:
        """No target has asked for this quote for the strategy's maker TTL."""
        return now_ns - quote.wanted_ns >= self.ttl_ns.get(strategy, 0)
