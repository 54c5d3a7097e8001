"""The mutable state of one order inside the simulated venue."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cryptoarena.trading.exchange.models import Order, OrderRequest, OrderStatus

ZERO = Decimal(0)


@dataclass
class QueueSpot:
    """Where a resting order stands in its price level's queue (``exchange.queues``)."""

    ahead: Decimal = ZERO  # size still ahead of it at its price
    # L3 only: the recorded orders ahead of it (id → size still open) and the size that
    # recorded fills at or through its price gave it once nothing was ahead (not yet filled).
    ahead_ids: dict[int, Decimal] | None = None
    credit: Decimal = ZERO


@dataclass
class SimOrder:
    request: OrderRequest  # already rounded to the instrument
    exchange_id: str
    seq: int
    created_ns: int
    arrival_ns: int
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    updated_ns: int = 0
    # "" until the first trade after arrival, then "taker" or "maker" ("tape": a market order
    # whose rest, after walking a recorded book, takes from the tape's later trades)
    phase: str = ""
    book: str = ""  # the account (strategy book) it belongs to; see SimVenue
    # An amendment in flight: (arrival_ns, qty, price). The order keeps working on its old
    # terms until the amendment arrives, as on a real venue.
    pending: tuple[int, Decimal, Decimal | None] | None = None
    queue: QueueSpot | None = None  # set when it starts resting (maker phase)
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        return self.cum_value / self.filled_qty if self.filled_qty else None

    def add_fill(self, qty: Decimal, price: Decimal, fee: Decimal, ts_ns: int) -> None:
        self.filled_qty += qty
        self.cum_value += qty * price
        self.cum_fee += fee
        self.updated_ns = ts_ns
        self.status = OrderStatus.FILLED if self.remaining <= 0 else OrderStatus.PARTIALLY_FILLED

    def close(self, status: OrderStatus, ts_ns: int, *, cancel_type: str, reason: str = "") -> None:
        self.status = status
        self.cancel_type = cancel_type
        if reason:
            self.reject_reason = reason
        self.updated_ns = max(ts_ns, self.updated_ns)

    def snapshot(self) -> Order:
        r = self.request
        return Order(
            client_id=r.client_id,
            exchange_id=self.exchange_id,
            symbol=r.symbol,
            side=r.side,
            order_type=r.order_type,
            qty=r.qty,
            price=r.price,
            status=self.status,
            filled_qty=self.filled_qty,
            avg_price=self.avg_price,
            reduce_only=r.reduce_only,
            time_in_force=r.time_in_force,
            created_ns=self.created_ns,
            updated_ns=self.updated_ns or self.created_ns,
            reject_reason="" if self.reject_reason == "EC_NoError" else self.reject_reason,
        )
