"""Queue position of resting orders on the paper venue (exchange/queues.py): the tape estimate
(the default), the displayed size of a recorded book (L2), exact FIFO from recorded order events
(L3), and taker orders walking a recorded book. Hand-made tapes and books."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.data.book_replay import (
    ASK,
    BID,
    CHANGED,
    CREATED,
    DELETED,
    BookTape,
    OrderEvents,
    RecordedMarket,
    load_bitstamp_market,
)
from cryptoarena.data.records import BUY
from cryptoarena.data.samples import BITSTAMP_DAY
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.engine.session import ExchangeKind, SessionError, make_exchange
from cryptoarena.trading.exchange.models import (
    Fill,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.exchange.queues import QueueModel, fill_rules, queue_note, taker_note

from tests.unit.test_exchange_limits import MS, T0, Tape  # the hand-made tape, written once

D = Decimal


def make(market: RecordedMarket | None = None, **cfg: object) -> tuple[PaperExchange, Tape]:
    clock = SimClock(T0)
    config = PaperExchangeConfig(latency_ms=0.0, initial_balance=D("1000000"), **cfg)  # type: ignore[arg-type]
    ex = PaperExchange(config, clock=clock, market=market)
    return ex, Tape(ex, clock)


def quote(cid: str, side: Side, qty: str, price: str) -> OrderRequest:
    return OrderRequest(
        cid, "BTCUSDT", side, D(qty), OrderType.LIMIT, D(price), TimeInForce.POST_ONLY
    )


def qty(fills: list[Fill]) -> Decimal:
    return sum((f.qty for f in fills), D(0))


async def test_25_btc_at_the_level_then_0_001_through_fills_nothing_by_default() -> None:
    """Issue #20: under the old rule (no queue) the 0.001 through filled 0.001."""
    ex, tape = make()
    assert ex.config.queue_model is QueueModel.TAPE  # the default
    tape.trade("100.5", side=BUY)
    tape.trade("100.0", "25")  # sellers hit 25 BTC at the bid: a deep level
    await ex.place_order(quote("q", Side.BUY, "0.5", "100.0"))
    assert tape.trade("99.9", "0.001") == []

    old, old_tape = make(queue_model=QueueModel.NONE)
    old_tape.trade("100.5", side=BUY)
    old_tape.trade("100.0", "25")
    await old.place_order(quote("q", Side.BUY, "0.5", "100.0"))
    assert qty(old_tape.trade("99.9", "0.001")) == D("0.001")


async def test_trades_at_the_price_pay_off_the_queue_then_fill() -> None:
    ex, tape = make()
    tape.trade("100.0", "2")
    tape.trade("100.0", "1")  # 3 BTC ahead of a bid joining at 100.0
    await ex.place_order(quote("q", Side.BUY, "0.5", "100.0"))
    assert tape.trade("100.0", "2.8") == []  # 0.2 still ahead
    assert tape.trade("100.0", "0.5", side=BUY) == []  # a buyer lifting asks: says nothing
    fills = tape.trade("100.0", "0.4")  # pays the last 0.2, fills 0.2 at the limit, as maker
    assert [(f.qty, f.price, f.is_maker) for f in fills] == [(D("0.2"), D("100.0"), True)]
    assert qty(tape.trade("99.5", "1")) == D("0.3")  # through, nothing ahead: the rest


async def test_a_trade_through_pays_the_queue_with_its_size_first() -> None:
    ex, tape = make()
    tape.trade("100.0", "1.5", side=BUY)  # buyers lifted 1.5 BTC of asks at 100.0
    tape.trade("99.9", "1")
    await ex.place_order(quote("q", Side.SELL, "2", "100.0"))  # an ask: 1.5 ahead
    assert tape.trade("100.0", "3") == []  # a seller at 100.0 says nothing about asks
    assert tape.trade("100.5", "1", side=BUY) == []  # through: pays 1.0 of the queue
    fills = tape.trade("100.5", "1", side=BUY)  # pays the last 0.5, fills 0.5 at the limit
    assert [(f.qty, f.price, f.is_maker) for f in fills] == [(D("0.5"), D("100.0"), True)]


async def test_a_level_that_did_not_trade_is_taken_as_deep_as_its_neighbours() -> None:
    ex, tape = make()
    tape.trade("100.0", "4")
    tape.trade("99.9", "1.5")
    await ex.place_order(quote("q", Side.BUY, "1", "99.8"))  # nothing printed at 99.8: 4 ahead
    assert tape.trade("99.7", "3.9") == []
    assert qty(tape.trade("99.7", "0.3")) == D("0.2")


async def test_the_estimate_is_only_the_lookback_window_and_at_least_the_floor() -> None:
    ex, tape = make(queue_lookback_s=1.0, queue_min_qty=D("0.5"), queue_min_trades=0)
    tape.trade("100.0", "25")
    tape.trade("100.2", "1", side=BUY, gap_ms=2_000)  # the 25 BTC left the 1 s window
    await ex.place_order(quote("q", Side.BUY, "1", "100.0"))
    assert tape.trade("100.0", "0.4") == []  # the floor: 0.5 ahead
    assert qty(tape.trade("100.0", "0.4")) == D("0.3")


async def test_on_a_sparse_tape_the_window_reaches_back_the_last_prints() -> None:
    """Bitstamp 2015 prints every ~20-40 s: a 10 s window was mostly empty, so a quote joined
    with nothing ahead and the first print filled it (1.7x the recorded book's fills). The
    window now reaches back ``queue_min_trades`` prints (20 by default) whatever their age."""
    ex, tape = make()
    assert ex.config.queue_min_trades == 20 and ex.config.queue_lookback_s == 10.0
    tape.trade("100.5", side=BUY)
    tape.trade("100.0", "25")  # sellers hit 25 BTC at the bid...
    tape.trade("100.5", "0.1", side=BUY, gap_ms=40_000)  # ...40 s before the quote joins
    await ex.place_order(quote("q", Side.BUY, "0.5", "100.0"))
    assert tape.trade("99.9", "0.001") == []
    spot = ex.venue.orders["q"].queue
    assert spot is not None and spot.ahead == D("24.999")  # the 25 BTC, less the through print

    # Past the last 20 prints and the 10 s, the 25 BTC is forgotten again.
    ex, tape = make()
    tape.trade("100.5", side=BUY)
    tape.trade("100.0", "25")
    for _ in range(20):
        tape.trade("100.5", "0.1", side=BUY, gap_ms=2_000)
    await ex.place_order(quote("q", Side.BUY, "0.5", "100.0"))
    assert qty(tape.trade("99.9", "0.001")) == D("0.001")

    # The old window (10 s only) forgot it after 40 s of silence.
    old, old_tape = make(queue_min_trades=0)
    old_tape.trade("100.5", side=BUY)
    old_tape.trade("100.0", "25")
    old_tape.trade("100.5", "0.1", side=BUY, gap_ms=40_000)
    await old.place_order(quote("q", Side.BUY, "0.5", "100.0"))
    assert qty(old_tape.trade("99.9", "0.001")) == D("0.001")


async def test_each_book_waits_in_the_queue_as_if_alone() -> None:
    ex, tape = make()
    tape.trade("100.0", "1")
    await ex.place_order(quote("x-0-1-1", Side.BUY, "1", "100.0"))
    await ex.place_order(quote("x-1-1-1", Side.BUY, "1", "100.0"))
    fills = tape.trade("100.0", "1.5")
    assert sorted((f.client_id, f.qty) for f in fills) == [
        ("x-0-1-1", D("0.5")),
        ("x-1-1-1", D("0.5")),
    ]


# -- a recorded book (L2) --------------------------------------------------------------------
def book(rows: list[tuple[int, list[tuple[float, float]], list[tuple[float, float]]]]) -> BookTape:
    n, levels = len(rows), 3

    def arr(k: int, side: int) -> np.ndarray:
        out = np.full((n, levels), np.nan)
        for r, row in enumerate(rows):
            lv = row[side]
            for i, level in enumerate(lv):  # type: ignore[arg-type]
                out[r, i] = level[k]
        return out

    ts = np.array([r[0] for r in rows], np.int64)
    return BookTape(ts, arr(0, 1), arr(1, 1), arr(0, 2), arr(1, 2))


async def test_l2_the_displayed_size_is_ahead_and_caps_it_later() -> None:
    tape_book = book(
        [
            (T0, [(100.0, 3.0), (99.9, 5.0)], [(100.1, 2.0), (100.2, 4.0)]),
            (T0 + 10 * MS, [(100.0, 1.0), (99.9, 5.0)], [(100.1, 2.0), (100.2, 4.0)]),
        ]
    )
    ex, tape = make(RecordedMarket("hand", tape_book), queue_model=QueueModel.L2)
    tape.trade("100.0", "50")  # the tape would say 50 ahead; the book shows 3
    await ex.place_order(quote("q", Side.BUY, "1", "100.0"))
    assert tape.trade("100.0", "2.5") == []  # 0.5 ahead
    tape.ts = T0 + 10 * MS  # the level now shows 1.0 (others cancelled): min(0.5, 1.0) ahead
    assert qty(tape.trade("100.0", "0.7")) == D("0.2")
    # Improving on the best bid (99.9 shown): nobody ahead, whatever the tape printed.
    better = book([(T0, [(99.9, 5.0)], [(100.2, 4.0)])])
    ex, tape = make(RecordedMarket("hand", better), queue_model=QueueModel.L2)
    tape.trade("100.0", "50")
    await ex.place_order(quote("q2", Side.BUY, "1", "100.0"))
    assert qty(tape.trade("100.0", "0.3")) == D("0.3")


async def test_l2_a_taker_walks_the_book_as_it_stood_at_arrival() -> None:
    tape_book = book([(T0, [(100.0, 3.0)], [(100.1, 1.0), (100.2, 0.5), (100.5, 9.0)])])
    ex, tape = make(RecordedMarket("hand", tape_book), queue_model=QueueModel.L2)
    tape.trade("100.0", "1")
    buy = OrderRequest("m", "BTCUSDT", Side.BUY, D("2"), OrderType.MARKET)
    await ex.place_order(buy)
    fills = tape.trade("100.0", "0.01")  # any event after arrival: the book is walked
    assert [(f.qty, f.price, f.is_maker) for f in fills] == [
        (D("1.0"), D("100.1"), False),
        (D("0.5"), D("100.2"), False),
        (D("0.5"), D("100.5"), False),
    ]
    assert len({f.exec_id for f in fills}) == 3
    # A limit buy walks only up to its price, then rests there (crossing read from the book).
    await ex.place_order(
        OrderRequest("l", "BTCUSDT", Side.BUY, D("2"), OrderType.LIMIT, D("100.2"))
    )
    fills = tape.trade("100.0", "0.01")
    assert [(f.qty, f.price) for f in fills] == [(D("1.0"), D("100.1")), (D("0.5"), D("100.2"))]


# -- recorded order events (L3) ---------------------------------------------------------------
def events(
    rows: list[tuple[int, int, int, int, float, float]], trades: dict[str, int]
) -> OrderEvents:
    """rows: (pos, kind, id, side, price, amount), one ms apart from T0."""
    cols = list(zip(*rows, strict=True))
    return OrderEvents(
        ts=np.array([T0 + p * MS for p in cols[0]], np.int64),
        pos=np.array(cols[0], np.int64),
        kind=np.array(cols[1], np.int8),
        oid=np.array(cols[2], np.int64),
        side=np.array(cols[3], np.int8),
        price=np.array(cols[4], np.float64),
        amount=np.array(cols[5], np.float64),
        trade_pos=trades,
    )


async def test_l3_fifo_moves_up_on_cancels_and_fills_ahead_then_takes_fills_behind() -> None:
    ev = events(
        [
            (1, CREATED, 1, BID, 100.0, 2.0),  # A: ahead of us
            (2, CREATED, 2, BID, 100.0, 1.0),  # B: ahead of us
            (3, CREATED, 9, ASK, 100.5, 1.0),
            # our quote joins here (t3): 3.0 ahead
            (5, DELETED, 2, BID, 100.0, 1.0),  # B cancels: 2.0 ahead
            (6, CREATED, 3, BID, 100.0, 4.0),  # C: behind us
            (7, CREATED, 4, ASK, 100.0, 1.6),  # a taker sell...
            (8, DELETED, 4, ASK, 100.0, 0.0),  # ...filled as taker (not a maker fill)
            (9, CHANGED, 1, BID, 100.0, 0.4),  # ...against A: 0.4 ahead
            # trade t10 (1.6 at 100.0)
            (11, CREATED, 5, ASK, 100.0, 1.0),
            (12, DELETED, 5, ASK, 100.0, 0.0),
            (13, DELETED, 1, BID, 100.0, 0.0),  # A filled 0.4: nobody ahead
            (14, CHANGED, 3, BID, 100.0, 3.4),  # C (behind us) filled 0.6: that was ours
            # trade t15 (1.0 at 100.0)
        ],
        {"t10": 10, "t15": 15},
    )
    ex, tape = make(RecordedMarket("hand", l3=ev), queue_model=QueueModel.L3)
    tape.trade("100.5", side=BUY, gap_ms=2)  # t1, not in the recording: events 1-2 before it
    tape.ts = T0 + 3 * MS
    await ex.place_order(quote("q", Side.BUY, "1", "100.0"))
    order = ex.venue.orders["q"]
    tape.n, tape.ts = 9, T0 + 9 * MS
    assert tape.trade("100.0", "1.6") == []  # t10
    assert order.queue is not None and order.queue.ahead == D("0.4")
    tape.n, tape.ts = 14, T0 + 14 * MS
    fills = tape.trade("100.0", "1.0")  # t15
    assert [(f.qty, f.price, f.is_maker) for f in fills] == [(D("0.6"), D("100.0"), True)]


def test_the_bitstamp_day_loads_as_an_l2_and_l3_book() -> None:
    """The recorded Bitstamp day (data/sample; /work/shared/data README section 8): every
    top-20 snapshot, order event and trade position, none refused."""
    path = Path(__file__).resolve().parents[2] / "data" / "sample" / BITSTAMP_DAY
    if not path.exists():
        pytest.skip(f"data/sample/{BITSTAMP_DAY} is missing from this checkout")
    market, report = load_bitstamp_market(path)
    assert market.l2 is not None and market.l3 is not None and market.depth == "L3"
    assert report.malformed == 0 and report.rows == 276_767  # every message of the day
    assert len(market.l2) == 29_992 and len(market.l3.trade_pos) == 4_251
    first = int(market.l2.ts[0])
    (bid, _), (ask, _) = market.l2.levels(BID, first)[0], market.l2.levels(ASK, first)[0]
    assert bid < ask and market.l2.mid(first) == pytest.approx((bid + ask) / 2)


def test_an_arena_file_picks_any_queue_model_and_the_session_refuses_a_book_model_without_a_book() -> (
    None
):
    """l2/l3 used to be refused at load (arena runs loaded no book); now the session refuses
    them, in one line, only when the run has no recorded book to give the paper venue."""
    spec = {"name": "hold", "kind": "buy_and_hold"}
    assert parse_arena_config({"strategy": [spec]}).arena.queue_model == QueueModel.TAPE
    chosen = parse_arena_config({"arena": {"queue_model": "none"}, "strategy": [spec]})
    assert chosen.arena.queue_model == QueueModel.NONE
    l3 = parse_arena_config({"arena": {"queue_model": "l3"}, "strategy": [spec]})
    with pytest.raises(SessionError) as refused:
        make_exchange(Settings(), l3, ExchangeKind.PAPER, SimClock(T0), False)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("queue_model 'l3' needs recorded order events (L3), and this run")
    l2_book = RecordedMarket("hand", book([(T0, [(100.0, 3.0)], [(100.1, 2.0)])]))
    with pytest.raises(SessionError, match="'l3' needs recorded order events"):
        make_exchange(Settings(), l3, ExchangeKind.PAPER, SimClock(T0), False, l2_book)
    l2 = parse_arena_config({"arena": {"queue_model": "l2"}, "strategy": [spec]})
    exchange = make_exchange(Settings(), l2, ExchangeKind.PAPER, SimClock(T0), False, l2_book)
    assert exchange.venue.queues.describe() == {
        "queue_model": "l2",
        "queue_lookback_s": 10.0,
        "queue_min_trades": 20,
        "queue_min_qty": "0",
        "taker_fills": "book",
        "book": "hand (L2)",
    }


async def test_with_a_book_a_market_order_walks_it_under_any_queue_model_else_the_tape() -> None:
    """A market sell of 2.5 against bids 100.0 x 1, 99.9 x 1, 99.8 x 3: 1 + 1 + 0.5, VWAP
    (100.0 + 99.9 + 0.5 x 99.8) / 2.5 = 99.92 (by hand); without a book the same order fills
    on the next seller-initiated print, at its price, up to its size."""
    hand = book([(T0, [(100.0, 1.0), (99.9, 1.0), (99.8, 3.0)], [(100.1, 2.0)])])
    sell = OrderRequest("m", "BTCUSDT", Side.SELL, D("2.5"), OrderType.MARKET)
    for model in (QueueModel.TAPE, QueueModel.NONE):
        ex, tape = make(RecordedMarket("hand", hand), queue_model=model)
        assert ex.venue.queues.describe()["taker_fills"] == "book"
        tape.trade("100.05", "0.1", side=BUY)
        await ex.place_order(sell)
        fills = tape.trade("100.05", "0.01", side=BUY)  # the next event: the book is walked
        assert [(f.qty, f.price, f.is_maker) for f in fills] == [
            (D("1.0"), D("100.0"), False),
            (D("1.0"), D("99.9"), False),
            (D("0.5"), D("99.8"), False),
        ]
        vwap = sum((f.qty * f.price for f in fills), D(0)) / qty(fills)
        assert vwap == D("99.92")
        assert ex.venue.orders["m"].status.value == "Filled"
    ex, tape = make()
    assert ex.venue.queues.describe()["taker_fills"] == "tape"
    tape.trade("100.05", "0.1", side=BUY)
    await ex.place_order(sell)
    assert tape.trade("100.1", "5", side=BUY) == []  # a buyer: not this order's side
    fills = tape.trade("99.5", "1")
    assert [(f.qty, f.price, f.is_maker) for f in fills] == [(D("1"), D("99.5"), False)]


def test_the_report_lines_say_which_taker_rule_filled_the_run() -> None:
    rules = fill_rules(QueueModel.L3, RecordedMarket("bitstamp day", l3=events(
        [(1, CREATED, 1, BID, 100.0, 1.0)], {})), 10.0, D(0), min_trades=20)  # fmt: skip
    assert rules == {"queue_model": "l3", "taker_fills": "tape", "book": "bitstamp day (L3)"}
    assert taker_note(rules).startswith("taker fills tape: on the tape's later trades")
    walked = {"taker_fills": "book", "book": "lake BTCUSDT book (L2)"}
    assert taker_note(walked) == (
        "taker fills book: walk the recorded book (lake BTCUSDT book (L2)) as it stood at "
        "arrival, level by level (VWAP beyond the touch)"
    )
    assert taker_note(None).startswith("taker fills tape (recorded before book replays): ")


def test_the_report_line_states_the_tape_estimates_window() -> None:
    rules = make()[0].venue.queues.describe()
    assert queue_note(rules["queue_model"], rules) == (
        "queue model tape: the tape's recent size at a quote's price is ahead of it "
        "(conservative); the tape estimate reads the last 10 s or the last 20 prints, "
        "whichever reaches further back"
    )
    before = {"queue_model": "tape", "queue_lookback_s": 10.0, "queue_min_qty": "0.5"}
    assert queue_note("tape", before).endswith("reads the last 10 s, at least 0.5 ahead")
    assert queue_note("l3", fill_rules(QueueModel.L3, None, 10.0, D(0), min_trades=20)) == (
        "queue model l3: exact FIFO position from the recorded order events"
    )


async def test_fills_come_in_whole_lots_so_no_position_keeps_dust() -> None:
    """Recorded sizes with more decimals than the lot (Bitstamp's 8) filled 0.21221510 BTC,
    leaving positions no order could close (0.00023 BTC: "truncated to zero" every bar)."""
    ex, tape = make(queue_model=QueueModel.NONE)
    tape.trade("100.5", side=BUY)
    await ex.place_order(quote("q", Side.BUY, "1", "100.0"))
    fills = tape.trade("99.9", "0.4567")  # through: 0.4567 of it, in lots of 0.001
    assert [(f.qty, f.price) for f in fills] == [(D("0.456"), D("100.0"))]
    assert tape.trade("99.9", "0.0009") == []  # less than a lot fills nothing
    thin = book([(T0, [(100.0, 3.0)], [(100.1, 0.12345), (100.2, 5.0)])])
    ex, tape = make(RecordedMarket("hand", thin))
    tape.trade("100.05", "0.1", side=BUY)
    await ex.place_order(OrderRequest("m", "BTCUSDT", Side.BUY, D("0.5"), OrderType.MARKET))
    fills = tape.trade("100.05", "0.01", side=BUY)
    assert [(f.qty, f.price) for f in fills] == [(D("0.123"), D("100.1")), (D("0.377"), D("100.2"))]
