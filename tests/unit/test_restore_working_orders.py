"""A restart continues the orders in flight: a paper venue works the journal's working orders
again on the trades it has not seen, and the router gets back the rest of a target it still
had to send (issue #19 item 1)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from cryptoarena.clock import SimClock
from cryptoarena.data.records import BUY, Trade
from cryptoarena.trading.engine.restore import (
    restore_follow_ups,
    restore_working_orders,
    resume_ns,
    working_orders,
)
from cryptoarena.trading.exchange.base import WorkingOrder
from cryptoarena.trading.exchange.models import (
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.execution.maker_quotes import MakerQuotes
from cryptoarena.trading.execution.router import FollowUp, OrderRouter
from cryptoarena.trading.execution.tracking import OrderLedger
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.risk.limits import RiskConfig
from cryptoarena.trading.risk.manager import RiskManager

from tests.fakes.tape import real_tape
from tests.integration.trading_kit import journal_settings

D = Decimal
CID = "run-00-aa-1"  # book 00's first order


def _paper(start_ns: int) -> tuple[PaperExchange, SimClock]:
    clock = SimClock(start_ns)
    return PaperExchange(
        PaperExchangeConfig(latency_ms=50, initial_balance=D(1_000_000)), clock=clock
    ), clock


def _feed(ex: PaperExchange, clock: SimClock, trades: list[Trade]) -> list[Fill]:
    fills: list[Fill] = []
    for t in trades:
        clock.advance_to(t.ts)
        fills += ex.on_trades([t])
    return fills


def _working(fills: list[Fill], request: OrderRequest, sent_ns: int, eid: str) -> WorkingOrder:
    return WorkingOrder(
        request=request,
        strategy="a",
        sent_ns=sent_ns,
        filled_qty=sum((f.qty for f in fills), D(0)),
        cum_value=sum((f.qty * f.price for f in fills), D(0)),
        cum_fee=sum((f.fee for f in fills), D(0)),
        exchange_id=eid,
        price=request.price,
    )


async def test_a_partly_filled_market_order_fills_on_after_a_restart_as_if_never_stopped() -> None:
    tape = real_tape(3000)
    request = OrderRequest(CID, "BTCUSDT", Side.BUY, D("40"))
    # The run that is never stopped: the order fills over many buy trades.
    whole, clock = _paper(tape[0].ts)
    _feed(whole, clock, tape[:10])
    sent_ns = clock.now_ns()
    placed = await whole.place_order(request)
    all_fills = _feed(whole, clock, tape[10:])
    assert len(all_fills) > 4, "the order must fill over several trades"
    # The worker died after the second fill: the journal had those two and the order.
    cut = all_fills[1].ts_ns
    before = [f for f in all_fills if f.ts_ns <= cut]
    after = [f for f in all_fills if f.ts_ns > cut]
    assert before and after
    restarted, clock2 = _paper(tape[0].ts)
    working = _working(before, request, sent_ns, placed.exchange_id)
    assert restarted.restore_order(working, resume_ns=cut + 1)
    assert restarted.restore_order(working, resume_ns=cut + 1)  # again: still one order
    assert len(await restarted.open_orders("BTCUSDT")) == 1
    # A resumed replay feeds the venue the whole tape again; the restored order sees only the
    # trades after the cut and fills exactly as the uninterrupted order did.
    again = _feed(restarted, clock2, tape)
    assert again == after
    final = await restarted.get_order("BTCUSDT", CID)
    done = await whole.get_order("BTCUSDT", CID)
    assert final is not None and done is not None
    assert (final.status, final.filled_qty, final.avg_price) == (
        done.status,
        done.filled_qty,
        done.avg_price,
    )


async def test_a_restored_maker_quote_rests_at_its_amended_price_and_fills_only_through_it() -> (
    None
):
    tape = real_tape(400)
    ex, clock = _paper(tape[0].ts)
    last = tape[-1]
    bid = D(str(last.price)) - D("50")
    request = OrderRequest(
        CID, "BTCUSDT", Side.BUY, D("1"), OrderType.LIMIT, D("1.0"), TimeInForce.POST_ONLY
    )
    working = WorkingOrder(request, "a", tape[0].ts, D(0), D(0), D(0), None, bid)
    assert ex.restore_order(working, resume_ns=last.ts + 1)
    _feed(ex, clock, tape)
    order = await ex.get_order("BTCUSDT", CID)
    # Not cancelled as a PostOnly that would take: it had been resting before the restart.
    assert order is not None and order.status is OrderStatus.NEW and order.price == bid
    at = Trade(last.ts + 1_000_000, float(bid), 0.5, -BUY, "t-at", "BTCUSDT")
    through = Trade(last.ts + 2_000_000, float(bid - 1), 0.5, -BUY, "t-through", "BTCUSDT")
    assert _feed(ex, clock, [at]) == []  # its place in the queue died with the old venue
    (fill,) = _feed(ex, clock, [through])
    assert fill.is_maker and fill.price == bid and fill.qty == D("0.5")


def _router(ex: PaperExchange, journal: Journal, clock: SimClock) -> OrderRouter:
    books = {"a": Ledger("a", capital=D(10000)), "b": Ledger("b", capital=D(10000))}
    ledger = OrderLedger(
        books=books, record=journal.record, clock=clock, run_id="r", incarnation="x"
    )
    inst = ex.venue.instrument("BTCUSDT")
    return OrderRouter(
        exchange=ex, instrument=inst, ledger=ledger,
        risk=RiskManager(RiskConfig(), {"a": 10000.0, "b": 10000.0}, lambda _doc: None),
        record=journal.record, clock=clock, min_trade_fraction=0.0, order_timeout_s=10.0,
        inline=True, quotes=MakerQuotes({}, None),
    )  # fmt: skip


def _order_doc(cid: str, strategy: str, qty: str, ts_ns: int) -> dict[str, object]:
    return {
        "client_id": cid, "strategy": strategy, "symbol": "BTCUSDT", "side": "Buy", "qty": qty,
        "order_type": "Market", "price": None, "time_in_force": "GTC", "reduce_only": False,
        "ts_ns": ts_ns,
    }  # fmt: skip


def _fill_doc(cid: str, strategy: str, qty: str, ts_ns: int) -> dict[str, object]:
    return {
        "exec_id": f"e-{cid}-{ts_ns}", "client_id": cid, "strategy": strategy,
        "symbol": "BTCUSDT", "side": "Buy", "price": "100", "qty": qty, "fee": "0.01",
        "ts_ns": ts_ns,
    }  # fmt: skip


def test_the_journal_says_which_orders_worked_at_the_checkpoint(tmp_path: Path) -> None:
    s = 1_000_000_000
    with Journal.open(journal_settings(tmp_path), run_id="r") as journal:
        journal.record("orders", _order_doc("r-00-x-1", "a", "2", 10 * s))  # partly filled
        journal.record("fills", _fill_doc("r-00-x-1", "a", "0.5", 11 * s))
        journal.record("orders", _order_doc("r-01-x-1", "b", "1", 10 * s))  # filled
        journal.record("fills", _fill_doc("r-01-x-1", "b", "1", 11 * s))
        journal.record("orders", _order_doc("r-01-x-2", "b", "1", 12 * s))  # cancelled
        journal.record("order_updates", {"client_id": "r-01-x-2", "status": "Cancelled",
                                         "ts_ns": 12 * s})  # fmt: skip
        # Cancelled after the checkpoint: what the resumed run does again, not yet done.
        journal.record("order_updates", {"client_id": "r-00-x-1", "status": "Cancelled",
                                         "exchange_id": "E1", "ts_ns": 20 * s})  # fmt: skip
        journal.record("orders", _order_doc("r-00-x-2", "a", "1", 21 * s))  # after it
        journal.record("follow_ups", {"strategy": "a", "follow_up": FollowUp(-1.0, False, "d1")
                                      .doc(), "ts_ns": 10 * s})  # fmt: skip
        journal.record("follow_ups", {"strategy": "b", "follow_up": FollowUp(1.0, True, None)
                                      .doc(), "ts_ns": 11 * s})  # fmt: skip
        journal.record("follow_ups", {"strategy": "b", "follow_up": None, "ts_ns": 12 * s})
        assert journal.flush(10.0)
        checkpoint = 15 * s
        (working,) = working_orders(journal, "r", checkpoint)
        assert working.request.client_id == "r-00-x-1" and working.sent_ns == 10 * s
        assert (working.filled_qty, working.cum_value, working.cum_fee) == (
            D("0.5"),
            D("50.0"),
            D("0.01"),
        )
        assert resume_ns(journal, "r", checkpoint) == checkpoint  # a tick's time
        assert resume_ns(journal, "r", 11 * s) == 11 * s + 1  # a fill's: its trades were seen

        tape = real_tape(5)
        ex, clock = _paper(tape[0].ts)
        router = _router(ex, journal, clock)
        assert restore_working_orders(journal, "r", router, checkpoint) == 1
        flight = router.ledger.in_flight["a"]
        assert (flight.client_id, flight.qty, flight.sent_ns) == ("r-00-x-1", D(2), 10 * s)
        (open_order,) = ex.venue.open_orders("BTCUSDT")
        assert open_order.client_id == "r-00-x-1" and open_order.filled_qty == D("0.5")
        assert restore_follow_ups(journal, "r", router, checkpoint) == 1
        assert router.follow == {"a": FollowUp(-1.0, False, "d1")}


def test_a_follow_up_is_journaled_when_it_changes_only(tmp_path: Path) -> None:
    tape = real_tape(5)
    ex, clock = _paper(tape[0].ts)
    with Journal.open(journal_settings(tmp_path), run_id="r") as journal:
        router = _router(ex, journal, clock)
        rest = FollowUp(1.0, False, None)
        router.set_follow("a", rest, 1)
        router.set_follow("a", rest, 2)  # the same: nothing new to say
        router.set_follow("a", None, 3)
        router.set_follow("a", None, 4)
        assert journal.flush(10.0)
        docs = journal.find("follow_ups", {"run_id": "r"}, sort=[("ts_ns", 1)])
    assert [(d["ts_ns"], d["follow_up"]) for d in docs] == [(1, rest.doc()), (3, None)]
    assert router.follow == {}


def test_behind_accounts_only_the_paper_member_takes_an_order_back() -> None:
    """A Bybit account keeps its own orders (reconciliation settles them); the paper member
    lost them with the worker and works them again."""
    from cryptoarena.clock import LiveClock
    from cryptoarena.config import Settings
    from cryptoarena.trading.exchange.accounts import AccountsExchange
    from cryptoarena.trading.exchange.bybit import BybitExchange
    from pydantic import SecretStr

    keys = {"api_key": SecretStr("key"), "api_secret": SecretStr("secret")}
    bybit = BybitExchange(Settings().bybit.model_copy(update=keys), clock=LiveClock())
    tape = real_tape(5)
    paper, _ = _paper(tape[0].ts)
    accounts = AccountsExchange({"acc": bybit, "paper": paper}, {"s0": "acc", "s1": "paper"}, "x")
    assert accounts.capabilities.journal_orders

    def working(cid: str) -> WorkingOrder:
        request = OrderRequest(cid, "BTCUSDT", Side.BUY, D("1"))
        return WorkingOrder(request, "s", tape[0].ts, D(0), D(0), D(0), None, None)

    assert not accounts.restore_order(working("run-00-aa-1"), resume_ns=tape[0].ts)
    assert accounts.restore_order(working("run-01-aa-1"), resume_ns=tape[0].ts)
    assert [o.client_id for o in paper.venue.open_orders()] == ["run-01-aa-1"]


def test_behind_accounts_only_the_paper_member_s_books_are_seeded() -> None:
    """The accounts exchange declares ``accounts`` (its bindings, read by the router and the
    run record) and routes ``seed_book`` by strategy index: a Bybit account holds its own
    position, the paper member gets its book back from the journal."""
    from cryptoarena.clock import LiveClock
    from cryptoarena.config import Settings
    from cryptoarena.trading.engine.restore import seed_paper_exchange
    from cryptoarena.trading.exchange.accounts import AccountsExchange
    from cryptoarena.trading.exchange.base import account_bindings
    from cryptoarena.trading.exchange.bybit import BybitExchange
    from pydantic import SecretStr

    keys = {"api_key": SecretStr("key"), "api_secret": SecretStr("secret")}
    bybit = BybitExchange(Settings().bybit.model_copy(update=keys), clock=LiveClock())
    paper, _ = _paper(real_tape(5)[0].ts)
    bindings = {"s0": "acc", "s1": "paper"}
    accounts = AccountsExchange({"acc": bybit, "paper": paper}, bindings, "x")
    assert account_bindings(accounts) == bindings
    assert account_bindings(paper) == {} and account_bindings(bybit) == {}
    long, short = Ledger("s0", capital=D(10000)), Ledger("s1", capital=D(10000))
    long.apply_fill(Side.BUY, D("1"), D("100"), D("0.05"))
    short.apply_fill(Side.SELL, D("2"), D("101"), D("0.05"))
    assert seed_paper_exchange(accounts, "BTCUSDT", {"s0": long, "s1": short})
    assert paper.book_position("00", "BTCUSDT").qty == 0  # s0 trades on its Bybit account
    assert paper.book_position("01", "BTCUSDT").qty == D("-2")
    # A real venue keeps its own books: nothing to seed.
    assert not seed_paper_exchange(bybit, "BTCUSDT", {"s0": long})


def test_a_later_incarnation_s_risk_state_wins_a_tie_at_the_same_instant(tmp_path: Path) -> None:
    """Seq restarts with each incarnation: the dead one's longer session must not win a tie
    with the state the resumed incarnation journaled at the same instant."""
    from cryptoarena.trading.engine.restore import restore_risk

    t = 10 * 1_000_000_000
    capitals = {"a": 10000.0, "b": 10000.0}

    def halted_doc(strategy: str) -> dict[str, object]:
        docs: list[dict[str, object]] = []
        rm = RiskManager(RiskConfig(), capitals, lambda _doc: None, journal_state=docs.append)
        rm.halt(strategy, "strategy raised", t)
        assert docs and docs[-1]["ts_ns"] == t
        return docs[-1]

    with Journal.open(journal_settings(tmp_path), run_id="r") as journal:
        for k in range(5):  # the first incarnation ran longer: its seq is higher
            journal.record("decisions", {"strategy": "a", "target": 0.0, "ts_ns": k})
        journal.record("risk_state", halted_doc("a"))
        assert journal.flush(10.0)
    with Journal.open(journal_settings(tmp_path), run_id="r") as journal:
        journal.record("risk_state", halted_doc("b"))  # what the resumed incarnation decided
        assert journal.flush(10.0)
        fresh = RiskManager(RiskConfig(), capitals, lambda _doc: None)
        assert restore_risk(journal, "r", fresh, t)
    assert set(fresh.halted) == {"b"}
