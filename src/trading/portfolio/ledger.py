"""One strategy's book: its own capital, position, average price, P&L and fees.

Money is ``Decimal`` (the exchange's own units). ``cash`` moves only by traded notional and
fees are kept apart, so the identity the tests check is

    equity = cash + position value − fees = capital + realised + unrealised − fees

where realised and unrealised are computed independently from the average entry price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptoarena.trading.exchange.models import Side

ZERO = Decimal(0)


@dataclass
class Ledger:
    strategy: str
    capital: Decimal
    cash: Decimal = ZERO
    qty: Decimal = ZERO  # signed: > 0 long, < 0 short
    avg_price: Decimal = ZERO
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    fills: int = 0
    volume: Decimal = ZERO  # traded notional
    # Round trips (flat → position → flat or flip), net of their fees: for win rate etc.
    round_trips: int = 0
    wins: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO
    _trip_pnl: Decimal = field(default=ZERO, repr=False)
    last_fill_ns: int = 0

    def __post_init__(self) -> None:
        if self.cash == ZERO and self.qty == ZERO and self.fills == 0:
            self.cash = self.capital

    def apply_fill(
        self, side: Side, qty: Decimal, price: Decimal, fee: Decimal, ts_ns: int = 0
    ) -> Decimal:
        """Apply one execution; returns the P&L it realised (before fees)."""
        if qty <= 0 or price <= 0:
            raise ValueError(f"fill needs positive qty and price, got {qty} @ {price}")
        signed = qty if side == Side.BUY else -qty
        self.cash -= signed * price
        self.fees += fee
        self.fills += 1
        self.volume += qty * price
        self.last_fill_ns = max(self.last_fill_ns, ts_ns)
        realised = ZERO
        old = self.qty
        if old == ZERO or (old > 0) == (signed > 0):
            # Opening or adding: the entry price averages in.
            new = old + signed
            self.avg_price = (abs(old) * self.avg_price + qty * price) / abs(new)
            self.qty = new
            self._trip_pnl -= fee
            return realised
        closed = min(abs(signed), abs(old))
        direction = Decimal(1) if old > 0 else Decimal(-1)
        realised = closed * (price - self.avg_price) * direction
        self.realised += realised
        # The fee splits between the closing part and any flip remainder, pro rata.
        closing_fee = fee * closed / qty
        self._trip_pnl += realised - closing_fee
        new = old + signed
        self.qty = new
        if new == ZERO or (new > 0) != (old > 0):
            self._close_trip()
            if new != ZERO:
                self.avg_price = price
                self._trip_pnl = -(fee - closing_fee)
            else:
                self.avg_price = ZERO
        return realised

    def _close_trip(self) -> None:
        self.round_trips += 1
        if self._trip_pnl > 0:
            self.wins += 1
            self.gross_profit += self._trip_pnl
        else:
            self.gross_loss -= self._trip_pnl
        self._trip_pnl = ZERO

    def position_value(self, mark: Decimal) -> Decimal:
        return self.qty * mark

    def unrealised(self, mark: Decimal) -> Decimal:
        return self.qty * (mark - self.avg_price)

    def equity(self, mark: Decimal) -> Decimal:
        return self.cash + self.position_value(mark) - self.fees

    def exposure(self, mark: Decimal) -> float:
        """Position value as a signed fraction of equity."""
        eq = self.equity(mark)
        return float(self.position_value(mark) / eq) if eq > 0 else 0.0

    def snapshot(self, mark: Decimal, ts_ns: int) -> dict[str, Any]:
        """A journal document (floats for the dashboard, Decimal strings to restore exactly)."""
        return {
            "strategy": self.strategy,
            "ts_ns": ts_ns,
            "mark": float(mark),
            "equity": float(self.equity(mark)),
            "cash": float(self.cash),
            "qty": float(self.qty),
            "avg_price": float(self.avg_price),
            "realised": float(self.realised),
            "unrealised": float(self.unrealised(mark)),
            "fees": float(self.fees),
            "fills": self.fills,
            "round_trips": self.round_trips,
            "wins": self.wins,
            "exposure": self.exposure(mark),
            "exact": self.to_state(),
        }

    def to_state(self) -> dict[str, str | int]:
        return {
            "capital": str(self.capital),
            "cash": str(self.cash),
            "qty": str(self.qty),
            "avg_price": str(self.avg_price),
            "realised": str(self.realised),
            "fees": str(self.fees),
            "fills": self.fills,
            "volume": str(self.volume),
            "round_trips": self.round_trips,
            "wins": self.wins,
            "gross_profit": str(self.gross_profit),
            "gross_loss": str(self.gross_loss),
            "trip_pnl": str(self._trip_pnl),
            "last_fill_ns": self.last_fill_ns,
        }

    @classmethod
    def from_state(cls, strategy: str, state: dict[str, Any]) -> Ledger:
        book = cls(
            strategy=strategy,
            capital=Decimal(str(state["capital"])),
            cash=Decimal(str(state["cash"])),
            qty=Decimal(str(state["qty"])),
            avg_price=Decimal(str(state["avg_price"])),
            realised=Decimal(str(state["realised"])),
            fees=Decimal(str(state["fees"])),
            fills=int(state["fills"]),
            volume=Decimal(str(state.get("volume", "0"))),
            round_trips=int(state.get("round_trips", 0)),
            wins=int(state.get("wins", 0)),
            gross_profit=Decimal(str(state.get("gross_profit", "0"))),
            gross_loss=Decimal(str(state.get("gross_loss", "0"))),
            last_fill_ns=int(state.get("last_fill_ns", 0)),
        )
        book._trip_pnl = Decimal(str(state.get("trip_pnl", "0")))
        return book
