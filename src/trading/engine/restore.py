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
from typing import Any, cast

from cryptoarena.trading.engine.ports import JournalFind, JournalReader
from cryptoarena.trading.exchange.base import AccountsVenue, Exchange, JournalVenue, WorkingOrder
from cryptoarena.trading.exchange.errors import ExchangeError
from cryptoarena.trading.exchange.models import OrderRequest, OrderType, Side, TimeInForce
from cryptoarena.trading.execution.router import FollowUp, OrderRouter
from cryptoarena.trading.forecasts.pump import PendingPrediction
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.risk.manager import MINUTE_NS, RiskManager
from cryptoarena.trading.risk.state import RiskState

logger = logging.getLogger(__name__)

PROBE_MISSES = 3


@dataclass
class RestoreReport:
    fills_replayed: int = 0
    predictions_pending: int = 0  # unresolved predictions of earlier incarnations, taken over
    predictions_resolved: int = 0  # of those, resolved at start from recorded bars
    orders_known: int = 0
    orders_recovered: int = 0
    orders_working: int = 0  # working at the checkpoint, worked again by a paper venue
    follow_ups: int = 0  # the rest of a target the router still had to send
    fills_recovered: int = 0
    markouts_pending: int = 0  # fills just before the checkpoint still waiting for markouts
    checkpoint_ns: int = 0
    risk_restored: bool = False  # the risk state (halts, kill, loss marks) from the journal
    exchange_qty: Decimal = Decimal(0)
    books_qty: Decimal = Decimal(0)
    mismatch: str | None = None
    notes: list[str] = field(default_factory=list)
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)  # per-account positions

    def doc(self) -> dict[str, Any]:
        return {
            "fills_replayed": self.fills_replayed,
            "predictions_pending": self.predictions_pending,
            "predictions_resolved": self.predictions_resolved,
            "orders_known": self.orders_known,
            "orders_recovered": self.orders_recovered,
            "orders_working": self.orders_working,
            "follow_ups": self.follow_ups,
            "fills_recovered": self.fills_recovered,
            "markouts_pending": self.markouts_pending,
            "checkpoint_ns": self.checkpoint_ns,
            "risk_restored": self.risk_restored,
            "exchange_qty": str(self.exchange_qty),
            "books_qty": str(self.books_qty),
            "mismatch": self.mismatch,
            "notes": self.notes[:20],
            "accounts": self.accounts,
        }


def restore_books(
    journal: JournalReader, run_id: str, books: dict[str, Ledger], router: OrderRouter
) -> RestoreReport:
    """Replay journaled fills into fresh books; teach the router every id already used."""
    report = RestoreReport()
    fills = journal.find("fills", {"run_id": run_id}, sort=[("ts_ns", 1), ("seq", 1)])
    for doc in fills:
        if doc["exec_id"] in router.ledger.seen_exec or doc["strategy"] not in books:
            continue
        router.ledger.seen_exec.add(doc["exec_id"])
        books[doc["strategy"]].apply_fill(
            Side(doc["side"]),
            Decimal(doc["qty"]),
            Decimal(doc["price"]),
            Decimal(doc["fee"]),
            int(doc["ts_ns"]),
        )
        report.fills_replayed += 1
    sent = journal.sent_client_ids(run_id)
    router.ledger.sent |= sent
    report.orders_known = len(sent)
    for doc in journal.find(
        "orders", {"run_id": run_id}, projection={"client_id": 1, "strategy": 1}
    ):
        router.ledger.owner[doc["client_id"]] = doc["strategy"]
    # Resume a replay after the newest event the journal kept: nothing is decided twice.
    # One indexed document per kind (run_id + ts_ns, newest first): no scan of the journal.
    report.checkpoint_ns = journal.checkpoint_ns(run_id)
    return report


def restore_risk(journal: JournalFind, run_id: str, risk: RiskManager, checkpoint_ns: int) -> bool:
    """The risk manager's state at the checkpoint: the newest ``risk_state`` document at or
    before it (halts, the kill, the loss checks' marks; nothing the run does after it counts)
    and the order-rate windows from the orders of the minute before. True if one was found."""
    docs = journal.find(
        "risk_state",
        {"run_id": run_id, "ts_ns": {"$lte": checkpoint_ns}},
        # Ties in recording order across incarnations (an event id sorts by the journal session,
        # then seq; seq alone restarts with each): the incarnation that redid an instant wins.
        sort=[("ts_ns", -1), ("_id", -1)],
        limit=1,
    )
    if not docs:
        return False
    orders = journal.find(
        "orders",
        {"run_id": run_id, "ts_ns": {"$gt": checkpoint_ns - MINUTE_NS, "$lte": checkpoint_ns}},
        sort=[("ts_ns", 1), ("seq", 1)],
        projection={"strategy": 1, "ts_ns": 1},
    )
    sent = [(str(d["strategy"]), int(d["ts_ns"])) for d in orders]
    risk.restore(RiskState.from_doc(docs[0]), sent, checkpoint_ns)
    return True


TERMINAL = ("Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled")


def working_orders(journal: JournalFind, run_id: str, checkpoint_ns: int) -> list[WorkingOrder]:
    """The orders still working at the checkpoint, as the journal tells it: sent at or before
    it, not finished by an update at or before it, not all filled (an update journaled after
    the checkpoint belongs to what the resumed run does again)."""
    upto = {"run_id": run_id, "ts_ns": {"$lte": checkpoint_ns}}
    order = [("ts_ns", 1), ("_id", 1)]
    orders = journal.find("orders", upto, sort=order)
    if not orders:
        return []
    finished: set[str] = set()
    exchange_ids: dict[str, str] = {}
    amended: dict[str, Decimal] = {}
    for doc in journal.find("order_updates", upto, sort=order):
        cid = doc["client_id"]
        if doc.get("status") in TERMINAL:
            finished.add(cid)
        elif doc.get("status") == "Amend" and doc.get("price") is not None:
            amended[cid] = Decimal(doc["price"])
        if doc.get("exchange_id"):
            exchange_ids[cid] = str(doc["exchange_id"])
    filled: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for doc in journal.find("fills", upto, sort=order):
        qty = Decimal(doc["qty"])
        acc = filled[doc["client_id"]]
        acc[0] += qty
        acc[1] += qty * Decimal(doc["price"])
        acc[2] += Decimal(doc["fee"])
    out = []
    for doc in orders:
        cid = doc["client_id"]
        qty = Decimal(doc["qty"])
        done, value, fee = filled.get(cid, [Decimal(0)] * 3)
        if cid in finished or done >= qty:
            continue
        price = None if doc.get("price") is None else Decimal(doc["price"])
        request = OrderRequest(
            client_id=cid,
            symbol=doc["symbol"],
            side=Side(doc["side"]),
            qty=qty,
            order_type=OrderType(doc["order_type"]),
            price=price,
            time_in_force=TimeInForce(doc["time_in_force"]),
            reduce_only=bool(doc["reduce_only"]),
        )
        out.append(
            WorkingOrder(
                request=request,
                strategy=str(doc["strategy"]),
                sent_ns=int(doc["ts_ns"]),
                filled_qty=done,
                cum_value=value,
                cum_fee=fee,
                exchange_id=exchange_ids.get(cid),
                price=amended.get(cid, price),
            )
        )
    return out


def resume_ns(journal: JournalFind, run_id: str, checkpoint_ns: int) -> int:
    """The first trade time the resumed venue has not seen: a checkpoint that is a fill's time
    saw the trades of that instant; one that is a tick's time (a decision, an order, a
    snapshot) saw only the trades before it."""
    at = journal.find("fills", {"run_id": run_id, "ts_ns": checkpoint_ns}, limit=1)
    return checkpoint_ns + 1 if at else checkpoint_ns


def restore_working_orders(
    journal: JournalFind, run_id: str, router: OrderRouter, checkpoint_ns: int
) -> int:
    """A venue that kept its orders in memory (the paper venue) works the orders that were
    working at the checkpoint again, and the router has them in flight, timed from when they
    were sent: the resumed run continues them as the uninterrupted run did (no order is sent
    twice: the same client ids, the venue's rest of them). Returns how many."""
    exchange = router.exchange
    if not exchange.capabilities.journal_orders:
        return 0
    venue = cast("JournalVenue", exchange)
    since = resume_ns(journal, run_id, checkpoint_ns)
    restored = 0
    for order in working_orders(journal, run_id, checkpoint_ns):
        if order.strategy not in router.books:
            continue
        if not venue.restore_order(order, resume_ns=since):
            continue
        req = order.request
        router.resume_order(
            order.strategy, req.client_id, req.side, req.qty, order.sent_ns, order.price
        )
        restored += 1
    return restored


def restore_follow_ups(
    journal: JournalFind, run_id: str, router: OrderRouter, checkpoint_ns: int
) -> int:
    """The rest of each strategy's target the router still had to send at the checkpoint (the
    newest ``follow_ups`` document at or before it). Returns how many."""
    docs = journal.find(
        "follow_ups",
        {"run_id": run_id, "ts_ns": {"$lte": checkpoint_ns}},
        sort=[("ts_ns", 1), ("_id", 1)],
    )
    newest = {str(d["strategy"]): d.get("follow_up") for d in docs}
    for strategy, doc in newest.items():
        if doc is not None and strategy in router.books:
            router.follow[strategy] = FollowUp.from_doc(doc)
    return len(router.follow)


def pending_predictions(journal: JournalFind, run_id: str) -> list[PendingPrediction]:
    """The run's predictions without a realised price (pending at a crash or a stop)."""
    docs = journal.find(
        "predictions",
        {"run_id": run_id, "realised_price": None},
        projection={"_id": 1, "target_ts_ns": 1},
    )
    out = [PendingPrediction(str(d["_id"]), int(d["target_ts_ns"])) for d in docs]
    return sorted(out, key=lambda p: p.target_ns)


def _filled_by_client(journal: JournalFind, run_id: str) -> dict[str, Decimal]:
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for doc in journal.find("fills", {"run_id": run_id}, projection={"client_id": 1, "qty": 1}):
        filled[doc["client_id"]] += Decimal(doc["qty"])
    return filled


async def reconcile(
    journal: JournalFind, run_id: str, router: OrderRouter, report: RestoreReport, *, now_ns: int
) -> RestoreReport:
    """Ask the exchange about every order the journal did not see finish, and find lost ones."""
    exchange, symbol = router.exchange, router.instrument.symbol
    filled = _filled_by_client(journal, run_id)
    finished = {
        doc["client_id"]
        for doc in journal.find(
            "order_updates", {"run_id": run_id}, projection={"client_id": 1, "status": 1}
        )
        if doc.get("status") in TERMINAL
    }
    router.ledger.applied.update(filled)
    # Orders a paper venue works again (restore_working_orders) are in flight, not left over.
    settled = finished | {f.client_id for f in router.ledger.in_flight.values()}
    candidates = [cid for cid in router.ledger.sent if cid not in settled]
    for cid in candidates:
        await _settle_order(router, cid, report, now_ns, known=True, finished=finished)
    # Lost ids: incarnations that never stopped cleanly may have sent orders whose journal
    # records died with them. Ids are sequential per strategy: probe after the highest known
    # one until a few consecutive misses.
    highest: dict[tuple[str, str], int] = {}
    for cid in router.ledger.sent:
        parts = cid.split("-")
        if len(parts) == 4 and parts[0] == router.ledger.tag:
            highest[(parts[1], parts[2])] = max(
                highest.get((parts[1], parts[2]), 0), int(parts[3], 16)
            )
    for inc in _unclean_incarnations(journal, run_id):
        for idx in range(len(router.books)):
            seq, misses = highest.get((f"{idx:02d}", inc), 0), 0
            while misses < PROBE_MISSES:
                seq += 1
                cid = f"{router.ledger.tag}-{idx:02d}-{inc}-{seq:x}"
                found = await _settle_order(
                    router, cid, report, now_ns, known=cid in router.ledger.sent, finished=finished
                )
                misses = 0 if found else misses + 1
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
    if exchange.capabilities.accounts:
        # One account per strategy (or the paper venue for the unbound): each must match alone,
        # a long on one account and a short on another must not pass as "net flat".
        wrong = []
        for acc in await cast("AccountsVenue", exchange).positions(symbol):
            books = sum((router.books[s].qty for s in acc.strategies), Decimal(0))
            report.accounts[acc.account] = {"exchange_qty": str(acc.qty), "books_qty": str(books)}
            if acc.qty != books:
                wrong.append(f"account {acc.account}: position {acc.qty} != books {books}")
        if wrong:
            report.mismatch = "; ".join(wrong)
    return report


def _unclean_incarnations(journal: JournalFind, run_id: str) -> list[str]:
    """Incarnations of this run that started and never recorded a clean stop."""
    runs = journal.find("runs", {"run_id": run_id}, sort=[("ts_ns", 1), ("seq", 1)])
    out: list[str] = []
    for doc in runs:
        if doc.get("event") == "started" and doc.get("incarnation"):
            out.append(str(doc["incarnation"]))
        elif doc.get("event") == "stopped" and out:
            out.pop()
    return out


async def _settle_order(
    router: OrderRouter,
    cid: str,
    report: RestoreReport,
    now_ns: int,
    *,
    known: bool,
    finished: set[str],
) -> bool:
    """Ask the exchange about one client id; book missing fills, cancel it if still open."""
    exchange, symbol = router.exchange, router.instrument.symbol
    try:
        order = await exchange.get_order(symbol, cid)
    except ExchangeError as exc:
        report.notes.append(f"{cid}: {exc}")
        return False
    if order is None:
        if known and cid not in finished:
            report.notes.append(f"{cid}: unknown to the exchange (never arrived)")
        return False
    if cid not in router.ledger.sent:
        report.orders_recovered += 1
        router.ledger.sent.add(cid)
        router.ledger.owner.setdefault(cid, router.ledger.strategy_of(cid) or "")
    if router.ledger.recover_fill(order, now_ns):
        report.fills_recovered += 1
    if order.status.is_open:
        # Left over from the previous incarnation: cancel it, a fresh decision will follow.
        try:
            router.ledger.on_order(await exchange.cancel_order(symbol, cid))
        except ExchangeError as exc:
            report.notes.append(f"cancel {cid}: {exc}")
    else:
        router.ledger.on_order(order)
    return True


def seed_paper_exchange(exchange: Exchange, symbol: str, books: dict[str, Ledger]) -> bool:
    """A paper venue lives in the worker's memory (it declares ``journal_orders``): after a
    restart, give it the books' position and P&L back (the journal is its only persistence).
    Returns True if seeded. Each book goes to its own account on the venue (``seed_book``,
    keyed by the strategy index of its client ids); behind an :class:`AccountsExchange` only
    the books bound to its paper venue are taken."""
    if not exchange.capabilities.journal_orders:
        return False
    venue = cast("JournalVenue", exchange)
    seeded = False
    for i, b in enumerate(books.values()):
        if b.qty != 0 or b.realised != 0 or b.fees != 0:
            book = f"{i:02d}"
            seeded |= venue.seed_book(
                book, symbol, qty=b.qty, avg_price=b.avg_price, realised=b.realised, fees=b.fees
            )
    return seeded
