"""Balance and position accounting of a USDT-margined linear perpetual in one-way mode.

Shared by the paper exchange and the fake Bybit server, so both keep the same books.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from cryptoarena.trading.exchange.models import Balance, Position, Side

ZERO = Decimal(0)
PNL_QUANTUM = Decimal("1e-10")


@dataclass
class PositionState:
    symbol: str
    qty: Decimal = ZERO  # signed
    avg_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO  # cumulative, before fees

    def unrealised(self, mark: Decimal | None) -> Decimal:
        if mark is None or self.qty == 0:
            return ZERO
        return (mark - self.avg_price) * self.qty


@dataclass
class LinearAccount:
    """One coin wallet, positions per symbol, margin at a fixed leverage."""

    coin: str
    wallet: Decimal
    leverage: Decimal
    positions: dict[str, PositionState] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    fees_paid: Decimal = ZERO

    def position_state(self, symbol: str) -> PositionState:
        if symbol not in self.positions:
            self.positions[symbol] = PositionState(symbol)
        return self.positions[symbol]

    def position(self, symbol: str) -> Position:
        state = self.position_state(symbol)
        return Position(
            symbol=symbol,
            qty=state.qty,
            avg_price=state.avg_price,
            unrealised_pnl=state.unrealised(self.marks.get(symbol)),
        )

    def unrealised(self) -> Decimal:
        return sum((p.unrealised(self.marks.get(p.symbol)) for p in self.positions.values()), ZERO)

    def position_margin(self) -> Decimal:
        total = ZERO
        for p in self.positions.values():
            mark = self.marks.get(p.symbol, p.avg_price)
            total += abs(p.qty) * mark / self.leverage
        return total

    def available(self, order_margin: Decimal = ZERO) -> Decimal:
        return self.wallet + self.unrealised() - self.position_margin() - order_margin

    def balance(self, order_margin: Decimal = ZERO) -> Balance:
        return Balance(coin=self.coin, wallet=self.wallet, available=self.available(order_margin))

    def opening_qty(self, symbol: str, side: Side, qty: Decimal) -> Decimal:
        """The part of an order that would open or grow a position (the rest reduces it)."""
        pos = self.position_state(symbol).qty
        reduces = (side is Side.BUY and pos < 0) or (side is Side.SELL and pos > 0)
        return max(ZERO, qty - abs(pos)) if reduces else qty

    def apply_fill(
        self, symbol: str, side: Side, qty: Decimal, price: Decimal, fee: Decimal
    ) -> Decimal:
        """Book one execution; returns the realised P&L of its closing part (before fee)."""
        state = self.position_state(symbol)
        signed = qty if side is Side.BUY else -qty
        realised = ZERO
        if state.qty == 0 or (state.qty > 0) == (signed > 0):
            total = abs(state.qty) + qty
            state.avg_price = (abs(state.qty) * state.avg_price + qty * price) / total
            state.qty += signed
        else:
            closing = min(qty, abs(state.qty))
            direction = 1 if state.qty > 0 else -1
            # Quantized so the wallet stays exact (Decimal keeps 28 digits; an average price
            # from a division carries all of them).
            realised = ((price - state.avg_price) * closing * direction).quantize(PNL_QUANTUM)
            state.qty += signed
            if state.qty == 0:
                state.avg_price = ZERO
            elif (state.qty > 0) != (direction > 0):
                state.avg_price = price  # flipped: the remainder opened at this price
        state.realised_pnl += realised
        self.wallet += realised - fee
        self.fees_paid += fee
        self.marks[symbol] = price
        return realised
