"""Arena runs over a recorded book (issue #20 item 1): the Bitstamp 2015 day (L2 snapshots and
L3 order events, shipped) and a lake day with a recorded book (L2), through the real session,
paper venue and journal.

What is verified on the Bitstamp day:

- the same quotes (a bid and an ask of 1 BTC at the recorded best prices every 30 s, each
  replaced after 30 s) under ``none``, ``tape``, ``l2`` and ``l3``: every ``l3`` fill comes
  after every recorded order that rested ahead of the quote (same side and price when it
  arrived) has left the book, checked against the raw order events independently of the
  venue; and the ordering of maker fills documented in docs/exchange.md for this sparse tape
  (one trade every ~20-40 s, no taker side): the default ``tape`` estimate fills no more than
  the recorded book allows (``l2``, ``l3``), and ``l2`` ≥ ``l3`` ≥ ``none``;
- an ``arena backtest`` session with a maker and a taker strategy under ``l3``: the run records
  the book and the taker rule, the report prints both, and every taker fill of a market order's
  walk sits on a level of the book as it stood when the order arrived (no better than the
  touch, no more than the level showed).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.data.book import BookSnapshot, book_frame
from cryptoarena.data.book_replay import (
    ASK,
    BID,
    DELETED,
    RecordedMarket,
    load_bitstamp_market,
)
from cryptoarena.data.lake import Lake
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S, Trade
from cryptoarena.data.samples import BITSTAMP_DAY, TARDIS_DAY
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.engine.session import SessionError, SessionOptions, run_session
from cryptoarena.trading.exchange.models import (
    Instrument,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.results.source import build_report

pytestmark = pytest.mark.slow

D = Decimal
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
BITSTAMP = SAMPLE / BITSTAMP_DAY
# Bitstamp quotes cents: a BTCUSD instrument on the cent, so quotes join the recorded levels.
BTCUSD = Instrument(symbol="BTCUSD", tick_size=D("0.01"), qty_step=D("0.001"),
                    min_qty=D("0.001"), max_qty=D("1000"), min_notional=D("1"),
                    base_coin="BTC", quote_coin="USD")  # fmt: skip
MODELS = ("none", "tape", "l2", "l3")


@pytest.fixture(scope="module")
def bitstamp() -> tuple[RecordedMarket, pd.DataFrame]:
    if not BITSTAMP.exists():
        pytest.skip(f"data/sample/{BITSTAMP_DAY} is missing from this checkout")
    market, report = load_bitstamp_market(BITSTAMP)
    trades, _ = load_trades(BITSTAMP)
    assert report.malformed == 0 and market.l2 is not None and market.l3 is not None
    return market, trades


async def quote_slice(
    venue: dict[str, object],
    market: RecordedMarket,
    trades: pd.DataFrame,
    start_min: int,
    minutes: int,
) -> tuple[dict[str, tuple[int, Side, Decimal]], list[tuple[str, str, Decimal, bool]]]:
    """Same quotes under the venue settings ``venue`` (its queue model and estimate; also
    bench/queue_same_quotes.py): (quotes by id: arrival, side, price), fills (quote id, trade
    id, qty, maker)."""
    assert market.l2 is not None
    first = int(trades["ts"].iloc[0])
    a, b = first + start_min * 60 * NS_PER_S, first + (start_min + minutes) * 60 * NS_PER_S
    tape = trades[(trades["ts"] >= a) & (trades["ts"] < b)]
    clock = SimClock(a)
    config = PaperExchangeConfig(latency_ms=0.0, initial_balance=D("1e9"), instruments=(BTCUSD,),
                                 **venue)  # type: ignore[arg-type]  # fmt: skip
    ex = PaperExchange(config, clock=clock, market=market)
    quotes: dict[str, tuple[int, Side, Decimal]] = {}
    fills: list[tuple[str, str, Decimal, bool]] = []
    due = a
    for ts, px, size, side, tid in zip(
        tape["ts"], tape["price"], tape["size"], tape["side"], tape["trade_id"], strict=True
    ):
        while due <= ts:
            clock.advance_to(due)
            for order in ex.venue.open_orders():
                await ex.cancel_order("BTCUSD", order.client_id)
            for quote_side, book_side in ((Side.BUY, BID), (Side.SELL, ASK)):
                best = market.l2.levels(book_side, due)
                if best:
                    cid = f"q{len(quotes)}"
                    price = D(str(best[0][0]))
                    await ex.place_order(OrderRequest(cid, "BTCUSD", quote_side, D("1"),
                                                      OrderType.LIMIT, price,
                                                      TimeInForce.POST_ONLY))  # fmt: skip
                    quotes[cid] = (due, quote_side, price)
            due += 30 * NS_PER_S
        clock.advance_to(int(ts))
        trade = Trade(int(ts), float(px), float(size), int(side), str(tid), "BTCUSD")
        fills += [(f.client_id, str(tid), f.qty, f.is_maker) for f in ex.on_trades([trade])]
    return quotes, fills


def test_the_same_quotes_fill_fifo_under_l3_and_in_the_documented_order(
    bitstamp: tuple[RecordedMarket, pd.DataFrame],
) -> None:
    market, trades = bitstamp
    runs = {
        m: asyncio.run(quote_slice({"queue_model": m}, market, trades, 60, 240)) for m in MODELS
    }
    quotes = runs["l3"][0]
    assert len(quotes) == 960 and all(runs[m][0] == quotes for m in MODELS)  # the same quotes
    maker = {m: sum((q for _, _, q, mk in fills if mk), D(0)) for m, (_, fills) in runs.items()}
    filled = {m: len({cid for cid, _, _, mk in fills if mk}) for m, (_, fills) in runs.items()}
    assert all(maker[m] > 0 for m in MODELS), maker
    # docs/exchange.md, "Sensitivity" on the Bitstamp day. The default (tape, its window
    # stretched to the last 20 prints on this sparse tape) is at least as conservative as the
    # recorded book; it filled 1.7x l3 with a 10 s window alone (mostly empty: nothing ahead).
    assert PaperExchangeConfig().queue_model == "tape"
    assert maker["tape"] <= min(maker["l2"], maker["l3"]), maker
    assert filled["tape"] <= min(filled["l2"], filled["l3"]), filled
    # The recorded level (l2) ≥ exact FIFO (l3) ≥ through only (none).
    assert maker["l2"] >= maker["l3"] >= maker["none"], maker

    # FIFO, from the raw events: the orders live at the quote's price and side when it arrived
    # (their last event at or before then: not a deletion, something open) must all be gone
    # (deleted or down to nothing) before the trade that fills it.
    ev = market.l3
    assert ev is not None
    events = pd.DataFrame({"ts": ev.ts, "pos": ev.pos, "kind": ev.kind, "oid": ev.oid,
                           "side": ev.side, "price": ev.price, "amount": ev.amount})  # fmt: skip
    gone = events[(events["kind"] == DELETED) | (events["amount"] <= 0)]
    gone_at = gone.groupby("oid")["pos"].min()
    checked = 0
    for cid, tid, _, is_maker in runs["l3"][1]:
        assert is_maker  # PostOnly quotes never take
        arrival, side, price = quotes[cid]
        state = events[events["ts"] <= arrival].groupby("oid").last()
        ahead = state[(state["kind"] != DELETED) & (state["amount"] > 0)
                      & (state["side"] == (BID if side is Side.BUY else ASK))
                      & (state["price"] == float(price))]  # fmt: skip
        filled_at = ev.trade_pos[tid]
        assert all(gone_at.get(oid, np.iinfo(np.int64).max) < filled_at for oid in ahead.index)
        checked += len(ahead)
    assert checked > 0  # some fills did wait behind recorded orders


def _config(model: str) -> dict[str, object]:
    maker = {"fast": 5, "slow": 20, "bar_size": "10s", "execution": "maker"}
    return {
        "arena": {"queue_model": model},
        "strategy": [
            {"name": "sma_maker", "kind": "sma_cross", "params": maker},
            {"name": "sma_taker", "kind": "sma_cross", "params": {**maker, "execution": "taker"}},
        ],
    }


def test_an_l3_backtest_of_the_bitstamp_day_walks_its_book_and_says_so(
    tmp_path: Path, bitstamp: tuple[RecordedMarket, pd.DataFrame]
) -> None:
    market, _ = bitstamp
    assert market.l2 is not None
    settings = Settings(mongo={"embedded_dir": tmp_path / "journal"}, home=tmp_path)  # type: ignore[arg-type]
    config = parse_arena_config(_config("l3"))
    options = SessionOptions(replay_file=BITSTAMP, minutes=60, run_id="book")
    result = asyncio.run(run_session(settings, config, options, handle_signals=False))
    assert result.fills > 0
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        (started,) = journal.find("runs", {"run_id": "book", "event": "started"})
        orders = {o["client_id"]: o for o in journal.find("orders", {"run_id": "book"})}
        fills = journal.find("fills", {"run_id": "book"})
        notes = build_report(journal, "book").notes
    assert started["fills"] == {
        "queue_model": "l3",
        "taker_fills": "book",
        "book": f"bitstamp {BITSTAMP_DAY} (L3)",
    }
    assert any(n.startswith("queue model l3: exact FIFO") for n in notes)
    assert any(n.startswith("taker fills book: walk the recorded book (bitstamp") for n in notes)
    assert {f["strategy"] for f in fills if f["is_maker"]} == {"sma_maker"}
    walks = [f for f in fills if orders[f["client_id"]]["order_type"] == "Market"]
    assert walks
    first_ts: dict[str, int] = {}
    for f in walks:
        first_ts.setdefault(f["client_id"], f["ts_ns"])
    for f in walks:
        if f["ts_ns"] != first_ts[f["client_id"]]:
            continue  # the rest, beyond the 20 recorded levels, takes from the tape
        arrival = orders[f["client_id"]]["ts_ns"] + 50 * 1_000_000  # the venue's latency
        side = ASK if f["side"] == "Buy" else BID
        shown = dict(market.l2.levels(side, arrival))
        assert float(f["price"]) in shown and float(f["qty"]) <= shown[float(f["price"])]


def _lake_day(tmp_path: Path, *, with_book: bool) -> tuple[Settings, pd.Timestamp, float]:
    """Ten minutes of the shipped Binance day in a lake, and (if asked) a hand-made recorded
    book there: asks 0.5 above the first trade (0.4 BTC), 1.0 above (0.4), 2.0 above (50)."""
    trades, _ = load_trades(SAMPLE / TARDIS_DAY)
    first = int(trades["ts"].iloc[0])
    trades = trades[trades["ts"] < first + 600 * NS_PER_S].reset_index(drop=True)
    lake = Lake(tmp_path / "lake")
    lake.write_trades("BTCUSDT", trades)
    p = float(trades["price"].iloc[0])
    if with_book:
        snap = BookSnapshot(first - NS_PER_S, 1, 1, ((p - 0.5, 3.0), (p - 1.0, 3.0)),
                            ((p + 0.5, 0.4), (p + 1.0, 0.4), (p + 2.0, 50.0)))  # fmt: skip
        later = BookSnapshot(first + 300 * NS_PER_S, 2, 2, snap.bids, snap.asks)
        lake.append_book("BTCUSDT", book_frame([snap, later], 3))
    settings = Settings(mongo={"embedded_dir": tmp_path / "journal"}, home=tmp_path,  # type: ignore[arg-type]
                        data={"lake_dir": tmp_path / "lake"})  # fmt: skip
    return settings, pd.Timestamp(first, unit="ns", tz="UTC"), p


def test_a_lake_day_replays_with_its_recorded_book_and_refuses_l2_without_one(
    tmp_path: Path,
) -> None:
    hold = {"arena": {"queue_model": "l2"}, "strategy": [{"name": "h", "kind": "buy_and_hold"}]}
    config = parse_arena_config(hold)
    settings, day, p = _lake_day(tmp_path / "bare", with_book=False)
    options = SessionOptions(replay_day=day.date(), minutes=5, run_id="bare")
    with pytest.raises(SessionError, match=r"'l2' needs a recorded book .*, and this run has"):
        asyncio.run(run_session(settings, config, options, handle_signals=False))

    settings, day, p = _lake_day(tmp_path / "booked", with_book=True)
    options = SessionOptions(replay_day=day.date(), minutes=5, run_id="booked")
    asyncio.run(run_session(settings, config, options, handle_signals=False))
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        (started,) = journal.find("runs", {"run_id": "booked", "event": "started"})
        fills = journal.find("fills", {"run_id": "booked"}, sort=[("seq", 1)])
        marks = journal.find("markouts", {"run_id": "booked"})
    # Markouts read the recorded book's mid (p: bids from p - 0.5, asks from p + 0.5).
    assert sorted(m["exec_id"] for m in marks) == sorted(f["exec_id"] for f in fills)
    assert all(m["ref"] == ["mid"] * 3 and m["ref_px"] == [p] * 3 for m in marks)
    assert started["fills"]["book"] == "lake BTCUSDT book (L2)"
    assert started["fills"]["taker_fills"] == "book"
    # buy_and_hold buys ~1 BTC at once: it walks the hand-made asks, 0.4 + 0.4 + the rest.
    assert fills and not any(f["is_maker"] for f in fills)
    walk = [(D(f["qty"]), float(f["price"])) for f in fills[:3]]
    assert [q for q, _ in walk[:2]] == [D("0.4"), D("0.4")]
    assert [px for _, px in walk] == [p + 0.5, p + 1.0, p + 2.0]
