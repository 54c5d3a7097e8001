"""Restart: rebuild books from the journal, then reconcile them with the exchange.

Books are rebuilt by replaying the run's journaled fills in order (exact, and independent of
when the last equity snapshot was taken). Orders the journal knows but never saw finish are
asked about by client id; orders it never saw at all (lost in the last moments before a crash)
are found by probing the next sequence numbers of the previous incarnations. Fills the journal
missed are applied from the exchange's order record. If the positions still disagree, trading
is halted with the reason journaled: a human decides.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptoarena.trading.book import Book
from cryptoarena.trading.exchange.errors import ExchangeError
from cryptoarena.trading.exchange.models import Side
from cryptoarena.trading.router import OrderRouter

logger = logging.getLogger(__name__)

PROBE_AHEAD = 8


@dataclass
class RestoreReport:
    fills_replayed: int = 0
    orders_known: int = 0
    orders_recovered: int = 0
    fills_recovered: int = 0
    checkpoint_ns: int = 0
    exchange_qty: Decimal = Decimal(0)
    books_qty: Decimal = Decimal(0)
    mismatch: str | None = None
    notes: list[str] = field(default_factory=list)

    def doc(self) -> dict[str, Any]:
        return {
            "fills_replayed": self.fills_replayed,
            "orders_known": self.orders_known,
            "orders_recovered": self.orders_recovered,
            "fills_recovered": self.fills_recovered,
            "checkpoint_ns": self.checkpoint_ns,
            "exchange_qty": str(self.exchange_qty),
            "books_qty": str(self.books_qty),
            "mismatch": self.mismatch,
            "notes": self.notes[:20],
        }


def restore_books(
    journal: Any, run_id: str, books: dict[str, Book], router: OrderRouter
) -> RestoreReport:
    """Replay journaled fills into fresh books; teach the router every id already used."""
    report = RestoreReport()
    fills = journal.find("fills", {"run_id": run_id}, sort=[("ts_ns", 1), ("seq", 1)])
    for doc in fills:
        if doc["exec_id"] in router.seen_exec or doc["strategy"] not in books:
            continue
        router.seen_exec.add(doc["exec_id"])
        books[doc["strategy"]].apply_fill(
            Side(doc["side"]),
            Decimal(doc["qty"]),
            Decimal(doc["price"]),
            Decimal(doc["fee"]),
            int(doc["ts_ns"]),
        )
        report.fills_replayed += 1
    sent = journal.sent_client_ids(run_id)
    router.sent |= sent
    report.orders_known = len(sent)
    for doc in journal.find(
        "orders", {"run_id": run_id}, projection={"client_id": 1, "strategy": 1}
    ):
        router.owner[doc["client_id"]] = doc["strategy"]
    # Resume a replay after the newest event the journal kept: nothing is decided twice.
    for kind in ("equity", "decisions", "predictions", "orders", "fills"):
        newest = journal.find(kind, {"run_id": run_id}, sort=[("ts_ns", -1)], limit=1)
        if newest:
            report.checkpoint_ns = max(report.checkpoint_ns, int(newest[0]["ts_ns"]))
    return report


def _filled_by_client(journal: Any, run_id: str) -> dict[str, Decimal]:
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for doc in journal.find("fills", {"run_id": run_id}, projection={"client_id": 1, "qty": 1}):
        filled[doc["client_id"]] += Decimal(doc["qty"])
    return filled


async def reconcile(
    journal: Any, run_id: str, router: OrderRouter, report: RestoreReport, *, now_ns: int
) -> RestoreReport:
    """Ask the exchange about every order the journal did not see finish, and find lost ones."""
    exchange, symbol = router.exchange, router.instrument.symbol
    filled = _filled_by_client(journal, run_id)
    finished = {
        doc["client_id"]
        for doc in journal.find(
            "order_updates", {"run_id": run_id}, projection={"client_id": 1, "status": 1}
        )
        if doc.get("status") in ("Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled")
    }
    candidates = [cid for cid in router.sent if cid not in finished]
    # Lost ids: the next few sequence numbers after the highest known one, per incarnation.
    highest: dict[tuple[str, str], int] = {}
    for cid in router.sent:
        parts = cid.split("-")
        if len(parts) == 4 and parts[0] == router.tag:
            key = (parts[1], parts[2])
            highest[key] = max(highest.get(key, 0), int(parts[3], 16))
    probes = [
        f"{router.tag}-{idx}-{inc}-{seq:x}"
        for (idx, inc), top in highest.items()
        for seq in range(top + 1, top + 1 + PROBE_AHEAD)
    ]
    for cid in candidates + probes:
        try:
            order = await exchange.get_order(symbol, cid)
        except ExchangeError as exc:
            report.notes.append(f"{cid}: {exc}")
            continue
        if order is None:
            if cid in router.sent and cid not in finished:
                report.notes.append(f"{cid}: unknown to the exchange (never arrived)")
            continue
        if cid not in router.sent:
            report.orders_recovered += 1
            router.sent.add(cid)
        router.applied[cid] = filled.get(cid, Decimal(0))
        if router.recover_fill(order, now_ns):
            report.fills_recovered += 1
        if order.status.is_open:
            # Left over from the previous incarnation: cancel it, a fresh decision will follow.
            try:
                router.on_order(await exchange.cancel_order(symbol, cid))
            except ExchangeError as exc:
                report.notes.append(f"cancel {cid}: {exc}")
        else:
            router.on_order(order)
    try:
        position = await exchange.position(symbol)
    except ExchangeError as exc:
        report.mismatch = f"cannot read the exchange position: {exc}"
        return report
    report.exchange_qty = position.qty
    report.books_qty = sum((b.qty for b in router.books.values()), Decimal(0))
    if report.exchange_qty != report.books_qty:
        report.mismatch = (
            f"exchange position {report.exchange_qty} != sum of books {report.books_qty}"
        )
    return report


def seed_paper_exchange(exchange: Any, symbol: str, books: dict[str, Book]) -> bool:
    """A paper venue lives in the worker's memory: after a restart, give it the books' net
    position and P&L back (the journal is its only persistence). Returns True if seeded."""
    venue = getattr(exchange, "venue", None)
    account = getattr(venue, "account", None)
    if account is None:
        return False
    state = account.position_state(symbol)
    if state.qty != 0:
        return False
    net = sum((b.qty for b in books.values()), Decimal(0))
    if net != 0:
        cost = sum((b.qty * b.avg_price for b in books.values()), Decimal(0))
        state.qty = net
        state.avg_price = cost / net
    realised = sum((b.realised for b in books.values()), Decimal(0))
    fees = sum((b.fees for b in books.values()), Decimal(0))
    account.wallet += realised - fees
    account.fees_paid += fees
    return True
