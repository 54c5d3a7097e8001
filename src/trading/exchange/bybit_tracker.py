"""What the Bybit adapter knows about its orders and fills, from REST answers and pushes.

Order updates are published once per real change (status or filled quantity), fills once per
``execId``, whether they came over the private socket or from a REST re-sync after a gap.
"""

from __future__ import annotations

import logging
from typing import Any

from cryptoarena.trading.exchange import bybit_codec as codec
from cryptoarena.trading.exchange.models import Fill, Order
from cryptoarena.trading.exchange.updates import UpdateStream

logger = logging.getLogger(__name__)


class OrderTracker:
    def __init__(self, category: str) -> None:
        self.category = category
        self.orders: dict[str, Order] = {}  # latest known state, by client id
        self.fills: set[str] = set()
        self.last_event_ms = 0  # exchange time of the newest order update or fill seen
        self.updates: UpdateStream[Order | Fill] = UpdateStream()

    def remember(self, order: Order, *, exchange_time: bool = True) -> Order:
        known = self.orders.get(order.client_id)
        changed = known is None or (known.status, known.filled_qty) != (
            order.status,
            order.filled_qty,
        )
        self.orders[order.client_id] = order
        if exchange_time:  # an acknowledgement carries local time, not the exchange's
            self.last_event_ms = max(self.last_event_ms, order.updated_ns // 1_000_000)
        if changed:
            self.updates.publish(order)
        return order

    def fill(self, fill: Fill) -> None:
        if fill.exec_id not in self.fills:
            self.fills.add(fill.exec_id)
            self.last_event_ms = max(self.last_event_ms, fill.ts_ns // 1_000_000)
            self.updates.publish(fill)

    def on_message(self, message: dict[str, Any]) -> None:
        """A private push (on the event loop): order and execution topics become updates."""
        topic = str(message.get("topic", ""))
        data = message.get("data") or []
        try:
            if topic.startswith("order"):
                for row in data:
                    if row.get("category", self.category) == self.category:
                        self.remember(codec.parse_order(row))
            elif topic.startswith("execution"):
                for row in data:
                    fill = codec.parse_execution(row)
                    if fill is not None:
                        self.fill(fill)
            elif topic in ("position", "wallet"):
                logger.debug("%s push: %d rows", topic, len(data))
        except (KeyError, ValueError, ArithmeticError):
            logger.exception("unreadable %s push: %.300s", topic, message)
