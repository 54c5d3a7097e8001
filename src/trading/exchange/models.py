"""The exchange contract's records: instruments, orders, order updates, fills, positions.

Prices and quantities are ``Decimal`` and are rounded to the instrument's rules before they leave
the process. Every order carries a caller-chosen ``client_id`` (Bybit's ``orderLinkId``), so a
retry after a timeout can never create a second order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "Buy"
    SELL = "Sell"


class OrderType(StrEnum):
    MARKET = "Market"
    LIMIT = "Limit"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "PostOnly"


class OrderStatus(StrEnum):
    # Bybit's v5 orderStatus values.
    NEW = "New"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    PARTIALLY_FILLED_CANCELED = "PartiallyFilledCanceled"
    REJECTED = "Rejected"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    base_coin: str = "BTC"
    quote_coin: str = "USDT"

    def round_price(self, price: Decimal) -> Decimal:
        return (price / self.tick_size).quantize(Decimal(1), ROUND_HALF_UP) * self.tick_size

    def round_qty(self, qty: Decimal) -> Decimal:
        # Quantities round down: never trade more than asked.
        return (qty / self.qty_step).quantize(Decimal(1), ROUND_DOWN) * self.qty_step


@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class Order:
    client_id: str
    exchange_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: OrderStatus
    filled_qty: Decimal
    avg_price: Decimal | None
    reduce_only: bool
    time_in_force: TimeInForce
    created_ns: int
    updated_ns: int
    reject_reason: str = ""


@dataclass(frozen=True, slots=True)
class Fill:
    exec_id: str
    client_id: str
    exchange_id: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal  # in the quote coin; negative is a rebate
    is_maker: bool
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: Decimal  # signed: > 0 long, < 0 short
    avg_price: Decimal
    unrealised_pnl: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Balance:
    coin: str
    wallet: Decimal
    available: Decimal
