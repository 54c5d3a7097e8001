"""The order ledger: what is known about the run's orders (client ids, which strategy owns which
id, the order in flight per strategy) and the exchange's order updates and fills booked into the
books (each fill exactly once). :class:`cryptoarena.trading.execution.router.OrderRouter` sends through
it; the worker hands it the exchange's updates; a restart (``restore.py``) rebuilds it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cryptoarena.clock import Clock
from cryptoarena.trading.exchange.models import Fill, Order, OrderStatus
from cryptoarena.trading.execution.markouts import MarkoutTracker
from cryptoarena.trading.execution.orders import (
    InFlight,
    fill_doc,
    order_update_doc,
    recovered_fill,
    run_tag,
)
from cryptoarena.trading.portfolio.ledger import Ledger

logger = logging.getLogger(__name__)

Record = Callable[[str, dict[str, Any]], str]


class OrderLedger:
    def __init__(
        self,
        *,
        books: dict[str, Ledger],
        record: Record,
        clock: Clock,
        run_id: str,
        incarnation: str,
        markouts: MarkoutTracker | None = None,
    ) -> None:
        self.books = books
        # Every fill booked waits there for its markout horizons.
        self.markouts = markouts
        self._record = record
        self.clock = clock
        self.run_id = run_id
        self.tag = run_tag(run_id)
        self.incarnation = incarnation
        self.index = {name: i for i, name in enumerate(books)}
        self.seq = dict.fromkeys(books, 0)
        self.in_flight: dict[str, InFlight] = {}
        self.owner: dict[str, str] = {}
        self.sent: set[str] = set()
        self.seen_exec: set[str] = set()
        self.applied: dict[str, Decimal] = {}  # filled quantity booked, per client id
        # The last state journaled per client id: a venue that answers a cancel AND streams
        # the same update is journaled once.
        self._journaled: dict[str, tuple[str, Decimal, int]] = {}

    # -- ids ------------------------------------------------------------------------------
    def next_client_id(self, strategy: str) -> str:
        self.seq[strategy] += 1
        cid = f"{self.tag}-{self.index[strategy]:02d}-{self.incarnation}-{self.seq[strategy]:x}"
        if cid in self.sent:  # cannot happen with a fresh incarnation; refuse loudly if it does
            raise RuntimeError(f"client id {cid} would be reused")
        return cid

    def strategy_of(self, client_id: str) -> str | None:
        if client_id in self.owner:
            return self.owner[client_id]
        parts = client_id.split("-")
        if len(parts) == 4 and parts[0] == self.tag and parts[1].isdigit():
            names = list(self.books)
            i = int(parts[1])
            return names[i] if i < len(names) else None
        return None

    # -- updates from the exchange ----------------------------------------------------------
    def _failed(self, cid: str, reason: str) -> None:
        strategy = self.owner.get(cid)
        logger.warning("order %s (%s) failed: %s", cid, strategy, reason)
        self._record(
            "order_updates",
            {
                "client_id": cid,
                "strategy": strategy,
                "status": OrderStatus.REJECTED.value,
                "reason": reason,
                "ts_ns": self.clock.now_ns(),
            },
        )
        flight = self.in_flight.get(strategy) if strategy is not None else None
        if flight is not None and flight.client_id == cid:
            del self.in_flight[flight.strategy]

    def on_update(self, update: Order | Fill) -> None:
        if isinstance(update, Fill):
            self.on_fill(update)
        else:
            self.on_order(update)

    def on_order(self, order: Order) -> None:
        strategy = self.strategy_of(order.client_id)
        if strategy is None:
            return  # not ours (another process or manual trading on the account)
        state = (order.status.value, order.filled_qty, order.updated_ns)
        if self._journaled.get(order.client_id) != state:
            self._journaled[order.client_id] = state
            self._record("order_updates", order_update_doc(order, strategy, self.clock.now_ns()))
        if not order.status.is_open:
            current = self.in_flight.get(strategy)
            if current is not None and current.client_id == order.client_id:
                if self.applied.get(order.client_id, Decimal(0)) >= order.filled_qty:
                    del self.in_flight[strategy]
                else:
                    current.final = order

    def on_fill(self, fill: Fill) -> None:
        if fill.exec_id in self.seen_exec:
            return
        strategy = self.strategy_of(fill.client_id)
        if strategy is None:
            return
        self.seen_exec.add(fill.exec_id)
        book = self.books[strategy]
        realised = book.apply_fill(fill.side, fill.qty, fill.price, fill.fee, fill.ts_ns)
        self._record("fills", fill_doc(strategy, fill, realised))
        if self.markouts is not None:
            self.markouts.on_fill(strategy, fill)
        applied = self.applied[fill.client_id] = (
            self.applied.get(fill.client_id, Decimal(0)) + fill.qty
        )
        current = self.in_flight.get(strategy)
        if (
            current is not None
            and current.client_id == fill.client_id
            and current.final is not None
            and applied >= current.final.filled_qty
        ):
            del self.in_flight[strategy]

    def recover_fill(self, order: Order, now_ns: int) -> bool:
        """Book fills the exchange reports for ``order`` but that never reached us (a crash, a
        lost message): at the order's average price with its fee (maker for a PostOnly quote,
        else taker). Journaled as a fill with an ``exec_id`` of ``recovered-…``. Returns True if
        something was missing."""
        missing = order.filled_qty - self.applied.get(order.client_id, Decimal(0))
        strategy = self.strategy_of(order.client_id)
        if missing <= 0 or strategy is None or order.avg_price is None:
            return False
        self.owner[order.client_id] = strategy
        self.on_fill(recovered_fill(order, missing, now_ns))
        return True
