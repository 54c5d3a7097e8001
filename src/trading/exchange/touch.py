"""The touch (best bid and ask) estimated from the trade tape, for orders that join it.

Only public trades are streamed (no order book), so the bid is taken where the last seller hit
it and the ask where the last buyer lifted it, each clamped by the last trade price. A PostOnly
order at these prices never counts as crossing on the paper venue (its crossing rule reads the
same tape: see :mod:`cryptoarena.trading.exchange.venue`); on Bybit it may still be rejected
when the real book moved, which is what PostOnly is for.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from cryptoarena.data.records import BUY, SELL, Trade
from cryptoarena.trading.exchange.models import Instrument, Side
from cryptoarena.trading.exchange.venue import to_decimal


class TapeTouch:
    __slots__ = ("_ask", "_bid", "last")

    def __init__(self) -> None:
        self.last: float | None = None
        self._bid: float | None = None  # price of the last sell-taker trade
        self._ask: float | None = None  # price of the last buy-taker trade

    def update(self, trades: Iterable[Trade]) -> None:
        for t in trades:
            self.last = t.price
            if t.side == SELL:
                self._bid = t.price
            elif t.side == BUY:
                self._ask = t.price

    @property
    def bid(self) -> float | None:
        if self.last is None:
            return None
        return self.last if self._bid is None else min(self._bid, self.last)

    @property
    def ask(self) -> float | None:
        if self.last is None:
            return None
        return self.last if self._ask is None else max(self._ask, self.last)

    def join(self, side: Side, instrument: Instrument) -> Decimal | None:
        """The price a maker order joins at: the bid for a buy, the ask for a sell, on the tick
        (rounded away from the other side, so rounding never makes it cross)."""
        price = self.bid if side is Side.BUY else self.ask
        if price is None:
            return None
        ticks = to_decimal(price) / instrument.tick_size
        whole = ticks.to_integral_value(
            rounding="ROUND_FLOOR" if side is Side.BUY else "ROUND_CEILING"
        )
        return whole * instrument.tick_size
