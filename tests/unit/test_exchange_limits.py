"""Limit orders on the paper venue, on hand-made tapes: the through rule, partial fills,
PostOnly, cancel/replace races, and books that fill as if alone.

These pin the venue's mechanics under the no-queue rule (``queue_model = "none"``: only trades
through a resting order fill it); queue position is tested in test_exchange_queues.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.records import BUY, SELL, Trade
from cryptoarena.trading.exchange.errors import (
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
)
from cryptoarena.trading.exchange.models import (
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig, book_of
from cryptoarena.trading.exchange.queues import QueueModel
from cryptoarena.trading.exchange.venue import Liquidity

D = Decimal
T0 = 1_700_000_000 * 10**9
MS = 1_000_000


class Tape:
    """Hand-made trades, one millisecond apart unless told otherwise."""

    def __init__(self, ex: PaperExchange, clock: SimClock) -> None:
        self.ex, self.clock, self.n, self.ts = ex, clock, 0, T0

    def trade(self, price: str, size: str = "1", side: int = SELL, gap_ms: int = 1) -> list[Fill]:
        self.n += 1
        self.ts += gap_ms * MS
        self.clock.advance_to(self.ts)
        t = Trade(self.ts, float(price), float(size), side, f"t{self.n}", "BTCUSDT")
        return self.ex.on_trades([t])


def make(
    latency_ms: float = 0.0, liquidity: Liquidity = Liquidity.ISOLATED, balance: str = "100000"
) -> tuple[PaperExchange, Tape]:
    clock = SimClock(T0)
    cfg = PaperExchangeConfig(
        latency_ms=latency_ms,
        initial_balance=D(balance),
        liquidity=liquidity,
        queue_model=QueueModel.NONE,
    )
    ex = PaperExchange(cfg, clock=clock)
    return ex, Tape(ex, clock)


def limit(
    cid: str, side: Side, qty: str, price: str, tif: TimeInForce = TimeInForce.GTC
) -> OrderRequest:
    return OrderRequest(cid, "BTCUSDT", side, D(qty), OrderType.LIMIT, D(price), tif)


async def test_touch_never_fills_a_resting_limit_a_trade_through_does_at_the_limit() -> None:
    ex, tape = make()
    tape.trade("100.5", side=BUY)
    await ex.place_order(limit("b", Side.BUY, "0.5", "100.0"))
    assert tape.trade("100.0", "5") == []  # at the level: queue position unknown, no fill
    assert tape.trade("100.0", "5", side=BUY) == []
    fills = tape.trade("99.9", "2")
    assert [(f.price, f.qty, f.is_maker) for f in fills] == [(D("100.0"), D("0.5"), True)]
    assert fills[0].fee == D("0.5") * D("100.0") * D("0.0002")  # Bybit linear maker 0.02 %
    order = await ex.get_order("BTCUSDT", "b")
    assert order is not None and order.status is OrderStatus.FILLED
    # A sell rests above and fills only on a print strictly above it.
    await ex.place_order(limit("s", Side.SELL, "0.5", "101.0"))
    assert tape.trade("101.0", side=BUY) == []
    assert [f.price for f in tape.trade("101.1", side=BUY)] == [D("101.0")]


async def test_partial_fills_by_the_size_of_each_trade_through() -> None:
    ex, tape = make()
    tape.trade("100.5")
    await ex.place_order(limit("b", Side.BUY, "1.0", "100.0"))
    got = []
    for price, size in (("99.9", "0.3"), ("100.0", "9"), ("99.8", "0.5"), ("99.9", "0.4")):
        got += [f.qty for f in tape.trade(price, size)]
    assert got == [D("0.3"), D("0.5"), D("0.2")]
    order = await ex.get_order("BTCUSDT", "b")
    assert order is not None and order.filled_qty == D("1.0") and order.avg_price == D("100.0")


async def test_post_only_is_cancelled_when_it_would_cross_and_rests_at_the_touch() -> None:
    ex, tape = make()
    tape.trade("100.0", side=SELL)  # a seller hit the bid at 100.0: the bid is there
    await ex.place_order(limit("join", Side.BUY, "0.1", "100.0", TimeInForce.POST_ONLY))
    await ex.place_order(limit("cross", Side.BUY, "0.1", "100.1", TimeInForce.POST_ONLY))
    tape.trade("100.0", side=SELL)
    join = await ex.get_order("BTCUSDT", "join")
    cross = await ex.get_order("BTCUSDT", "cross")
    assert join is not None and join.status is OrderStatus.NEW
    assert cross is not None and cross.status is OrderStatus.CANCELLED
    assert cross.reject_reason == "EC_PostOnlyWillTakeLiquidity" and cross.filled_qty == 0
    # A buyer lifted the ask at 100.2: a sell there joins the ask, a buy there would take.
    tape.trade("100.2", side=BUY)
    await ex.place_order(limit("ask", Side.SELL, "0.1", "100.2", TimeInForce.POST_ONLY))
    await ex.place_order(limit("lift", Side.BUY, "0.1", "100.2", TimeInForce.POST_ONLY))
    tape.trade("100.2", side=BUY)
    assert (await ex.get_order("BTCUSDT", "ask")).status is OrderStatus.NEW  # type: ignore[union-attr]
    assert (await ex.get_order("BTCUSDT", "lift")).status is OrderStatus.CANCELLED  # type: ignore[union-attr]


async def test_a_crossing_gtc_limit_takes_then_rests_at_its_price() -> None:
    ex, tape = make()
    tape.trade("100.0", side=BUY)
    await ex.place_order(limit("b", Side.BUY, "1.0", "100.2"))
    fills = tape.trade("100.1", "0.4", side=BUY)  # takes at the trade's price, taker fee
    assert [(f.price, f.qty, f.is_maker) for f in fills] == [(D("100.1"), D("0.4"), False)]
    assert tape.trade("100.3", "5", side=BUY) == []  # the market left: the rest now rests
    fills = tape.trade("100.1", "5", side=SELL)
    assert [(f.price, f.qty, f.is_maker) for f in fills] == [(D("100.2"), D("0.6"), True)]


async def test_amend_lands_after_the_latency_and_the_old_price_works_until_then() -> None:
    ex, tape = make(latency_ms=100)
    tape.trade("100.5")
    await ex.place_order(limit("b", Side.BUY, "1.0", "100.0"))
    tape.trade("100.4", gap_ms=150)  # the order has arrived
    amended = await ex.amend_order("BTCUSDT", "b", price=D("99.0"), qty=D("2.0"))
    assert amended.price == D("100.0") and amended.qty == D("1.0")  # not landed yet
    # The race: a trade through the old price while the amendment is in flight fills it.
    fills = tape.trade("99.9", "0.4", gap_ms=50)
    assert [(f.price, f.qty) for f in fills] == [(D("100.0"), D("0.4"))]
    # Landed: new price and total qty (1.6 left); 99.5 is no longer through.
    assert tape.trade("99.5", "5", gap_ms=60) == []
    order = await ex.get_order("BTCUSDT", "b")
    assert order is not None and (order.price, order.qty) == (D("99.0"), D("2.0"))
    fills = tape.trade("98.9", "5")
    assert [(f.price, f.qty) for f in fills] == [(D("99.0"), D("1.6"))]


async def test_amend_or_cancel_after_the_fill_is_too_late() -> None:
    ex, tape = make(latency_ms=100)
    tape.trade("100.5")
    await ex.place_order(limit("b", Side.BUY, "1.0", "100.0"))
    tape.trade("100.4", gap_ms=150)
    await ex.amend_order("BTCUSDT", "b", price=D("99.0"))
    tape.trade("99.9", "3", gap_ms=10)  # filled in full before the amendment lands
    tape.trade("99.9", "3", gap_ms=200)  # the amendment lands on a filled order: nothing
    order = await ex.get_order("BTCUSDT", "b")
    assert order is not None and order.status is OrderStatus.FILLED
    assert (order.price, order.filled_qty) == (D("100.0"), D("1.0"))
    for call in (
        ex.amend_order("BTCUSDT", "b", price=D("98.0")),
        ex.cancel_order("BTCUSDT", "b"),
    ):
        with pytest.raises(OrderNotFoundError) as err:
            await call
        assert err.value.code == 110001


async def test_cancel_drops_an_amendment_in_flight_and_bad_amends_are_refused() -> None:
    ex, tape = make(latency_ms=100)
    tape.trade("100.5")
    await ex.place_order(limit("b", Side.BUY, "1.0", "100.0"))
    tape.trade("100.4", gap_ms=150)
    tape.trade("99.9", "0.3")
    with pytest.raises(InvalidOrderError):  # the total may not go below what has filled
        await ex.amend_order("BTCUSDT", "b", qty=D("0.3"))
    with pytest.raises(InvalidOrderError):
        await ex.amend_order("BTCUSDT", "b")
    await ex.amend_order("BTCUSDT", "b", price=D("100.4"))
    cancelled = await ex.cancel_order("BTCUSDT", "b")
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.filled_qty == D("0.3")
    assert tape.trade("90", "9", gap_ms=500) == []
    await ex.place_order(OrderRequest("m", "BTCUSDT", Side.BUY, D("0.1")))
    with pytest.raises(InvalidOrderError):  # market orders are not amendable
        await ex.amend_order("BTCUSDT", "m", price=D("1"))


async def test_amending_a_post_only_across_the_market_cancels_it_on_landing() -> None:
    ex, tape = make(latency_ms=10)
    tape.trade("100.0", side=SELL)
    await ex.place_order(limit("p", Side.BUY, "0.1", "99.0", TimeInForce.POST_ONLY))
    tape.trade("100.0", gap_ms=20)
    await ex.amend_order("BTCUSDT", "p", price=D("100.5"))
    tape.trade("100.0", gap_ms=20)
    order = await ex.get_order("BTCUSDT", "p")
    assert order is not None and order.status is OrderStatus.CANCELLED
    assert order.reject_reason == "EC_PostOnlyWillTakeLiquidity" and order.filled_qty == 0


def _cid(book: int, seq: int) -> str:
    return f"run-{book:02d}-aa-{seq:x}"


async def test_books_fill_as_if_alone_and_shared_mode_splits_the_trade() -> None:
    """Fails on the old venue: the second book got nothing from a trade the first used up."""
    results = {}
    for mode in Liquidity:
        ex, tape = make(liquidity=mode)
        tape.trade("100.0", side=BUY)
        await ex.place_order(OrderRequest(_cid(0, 1), "BTCUSDT", Side.BUY, D("1.0")))
        await ex.place_order(OrderRequest(_cid(1, 1), "BTCUSDT", Side.BUY, D("1.0")))
        await ex.place_order(limit(_cid(2, 1), Side.SELL, "0.7", "100.1"))
        await ex.place_order(limit(_cid(3, 1), Side.SELL, "0.7", "100.1"))
        fills = tape.trade("100.2", "1.0", side=BUY)
        results[mode] = {book_of(f.client_id): f.qty for f in fills}
    alone = {"00": D("1.0"), "01": D("1.0"), "02": D("0.7"), "03": D("0.7")}
    assert results[Liquidity.ISOLATED] == alone
    assert results[Liquidity.SHARED] == {"00": D("1.0")}


async def test_margin_and_reduce_only_are_per_book() -> None:
    ex, tape = make(balance="1000")  # 10x leverage: 10,000 USDT of notional per book
    tape.trade("100.0", side=BUY)
    await ex.place_order(OrderRequest(_cid(0, 1), "BTCUSDT", Side.BUY, D("90")))
    await ex.place_order(OrderRequest(_cid(1, 1), "BTCUSDT", Side.SELL, D("1")))
    tape.trade("100.0", "100", side=BUY)
    tape.trade("100.0", "100", side=SELL)
    assert (ex.book_position("00", "BTCUSDT").qty, ex.book_position("01", "BTCUSDT").qty) == (
        D("90"),
        D("-1"),
    )
    # Ledger 01 still has its own margin although book 00 used most of its own.
    await ex.place_order(OrderRequest(_cid(1, 2), "BTCUSDT", Side.SELL, D("50")))
    # Net long, but book 01's reduce-only buy reduces *its* short: accepted.
    reduce = OrderRequest(_cid(1, 3), "BTCUSDT", Side.BUY, D("1"), reduce_only=True)
    assert (await ex.place_order(reduce)).status is OrderStatus.NEW
    with pytest.raises(OrderRejectedError):  # book 02 has no position to reduce
        await ex.place_order(
            OrderRequest(_cid(2, 1), "BTCUSDT", Side.SELL, D("1"), reduce_only=True)
        )
    assert (await ex.position("BTCUSDT")).qty == D("89")  # the net, what the books sum to


async def test_same_tape_same_orders_same_fills() -> None:
    async def run() -> list[tuple[str, Decimal, Decimal, bool, int]]:
        ex, tape = make(latency_ms=5)
        tape.trade("100.0")
        await ex.place_order(limit(_cid(0, 1), Side.BUY, "1.0", "99.8", TimeInForce.POST_ONLY))
        await ex.place_order(OrderRequest(_cid(1, 1), "BTCUSDT", Side.SELL, D("0.5")))
        out = []
        for i, p in enumerate(("99.9", "99.7", "99.9", "99.6", "100.1")):
            fills = tape.trade(p, "0.3", side=BUY if i % 2 else SELL, gap_ms=7)
            out += [(f.exec_id, f.price, f.qty, f.is_maker, f.ts_ns) for f in fills]
        return out

    first = await run()
    assert first and first == await run()


async def test_joining_the_tape_touch_never_crosses_on_the_paper_venue() -> None:
    """PostOnly bids and asks placed at TapeTouch's prices rest (never cancelled as crossing)
    at every point of a real stretch of tape."""
    from cryptoarena.trading.exchange.instruments import BTCUSDT_LINEAR
    from cryptoarena.trading.exchange.touch import TapeTouch

    from tests.fakes.tape import real_tape

    ex, tape = make()
    touch = TapeTouch()
    assert touch.join(Side.BUY, BTCUSDT_LINEAR) is None
    trades = real_tape(600, start=3000)
    clock = tape.clock
    placed = []
    for i, t in enumerate(trades):
        clock.advance_to(t.ts)
        ex.on_trades([t])
        touch.update([t])
        if i % 20 == 0:
            for side in Side:
                price = touch.join(side, BTCUSDT_LINEAR)
                assert price is not None and price % BTCUSDT_LINEAR.tick_size == 0
                cid = f"j{i}{side.value}"
                await ex.place_order(limit(cid, side, "0.001", str(price), TimeInForce.POST_ONLY))
                placed.append(cid)
    orders = [await ex.get_order("BTCUSDT", cid) for cid in placed]
    assert len(orders) == 60
    assert not [o for o in orders if o and o.reject_reason == "EC_PostOnlyWillTakeLiquidity"]
    assert touch.bid is not None and touch.ask is not None and touch.bid <= touch.ask


async def test_a_restart_seeds_each_book_on_its_own_account() -> None:
    """Fails on the old seeding: both books were netted into one account (flat here), so the
    short book's reduce-only buy was refused."""
    from cryptoarena.trading.engine.restore import seed_paper_exchange
    from cryptoarena.trading.portfolio.ledger import Ledger

    long, short = Ledger("a", capital=D("10000")), Ledger("b", capital=D("10000"))
    long.apply_fill(Side.BUY, D("1"), D("100"), D("0.05"))
    short.apply_fill(Side.SELL, D("1"), D("101"), D("0.05"))
    ex, tape = make()
    tape.trade("100.5")
    assert seed_paper_exchange(ex, "BTCUSDT", {"a": long, "b": short})
    assert ex.book_position("00", "BTCUSDT").qty == D("1")
    assert ex.book_position("01", "BTCUSDT").qty == D("-1")
    assert (await ex.position("BTCUSDT")).qty == 0  # what the books net to
    cover = OrderRequest(_cid(1, 9), "BTCUSDT", Side.BUY, D("1"), reduce_only=True)
    assert (await ex.place_order(cover)).status is OrderStatus.NEW
    assert not seed_paper_exchange(ex, "BTCUSDT", {"a": long, "b": short})  # only once


async def test_accounts_exchange_routes_amend_to_the_strategy_s_member() -> None:
    from cryptoarena.trading.exchange.accounts import AccountsExchange

    ex_a, tape_a = make()
    ex_b, tape_b = make()
    accounts = AccountsExchange({"paper": ex_a, "b": ex_b}, {"s0": "paper", "s1": "b"}, "mixed")
    for tape in (tape_a, tape_b):
        tape.trade("100.5")
    await accounts.place_order(limit(_cid(1, 1), Side.BUY, "1", "100.0"))
    await accounts.amend_order("BTCUSDT", _cid(1, 1), price=D("99.0"))
    tape_b.trade("100.4")  # the amendment lands on member b
    assert (await ex_b.get_order("BTCUSDT", _cid(1, 1))).price == D("99.0")  # type: ignore[union-attr]
    assert await ex_a.get_order("BTCUSDT", _cid(1, 1)) is None
    with pytest.raises(InvalidOrderError):
        await accounts.amend_order("BTCUSDT", "not-ours", price=D("1"))
