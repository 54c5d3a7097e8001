"""Residuals the venue would refuse are dust, not orders refused again every bar (issue #20).

On the Bitstamp day (BTC at ~$237) a partial maker fill left ``sma_cross`` long 0.013 BTC
(3.08 USDT, below the 5 USDT minimum order value); every flip sent that residual alone as the
close half and the venue refused it, 4,131 times over eight hours. Here the real router sends to
the real paper venue, with hand-made books and prices."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptoarena.clock import SimClock
from cryptoarena.data.records import BUY, NS_PER_S, SELL, Trade
from cryptoarena.trading.exchange.models import Side
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.exchange.touch import TapeTouch
from cryptoarena.trading.execution.maker_quotes import MakerQuotes
from cryptoarena.trading.execution.router import OrderRouter
from cryptoarena.trading.execution.tracking import OrderLedger
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.results.source import collect
from cryptoarena.trading.results.verdict import VerdictConfig
from cryptoarena.trading.risk.limits import RiskConfig
from cryptoarena.trading.risk.manager import RiskManager

D = Decimal
T0 = 1_430_442_000 * NS_PER_S  # 2015-05-01 01:00 UTC
MARK = 236.9


def _router(
    trades: list[tuple[float, int]], maker: tuple[str, ...] = ()
) -> tuple[OrderRouter, PaperExchange, list[tuple[str, dict[str, Any]]]]:
    """The router of books ``a`` and ``b`` on one paper venue that has seen ``trades``
    (price, taker side), one a second; ``maker`` strategies quote at the tape's touch."""
    clock = SimClock(T0)
    venue = PaperExchange(PaperExchangeConfig(latency_ms=0.0), clock=clock)
    touch = TapeTouch()
    tape = [Trade(T0 + i * NS_PER_S, p, 1.0, side, f"t{i}", "BTCUSDT")
            for i, (p, side) in enumerate(trades)]  # fmt: skip
    for t in tape:
        clock.advance_to(t.ts)
        venue.on_trades([t])
    touch.update(tape)
    records: list[tuple[str, dict[str, Any]]] = []

    def record(kind: str, doc: dict[str, Any]) -> None:
        records.append((kind, doc))

    books = {n: Ledger(n, capital=D(10_000)) for n in ("a", "b")}
    ledger = OrderLedger(books=books, record=record, clock=clock, run_id="r", incarnation="i")
    risk = RiskManager(RiskConfig(), dict.fromkeys(books, 10_000.0), lambda _doc: None)
    router = OrderRouter(
        exchange=venue, instrument=venue.venue.instrument("BTCUSDT"), ledger=ledger, risk=risk,
        record=record, clock=clock, min_trade_fraction=0.0, order_timeout_s=10.0, inline=True,
        quotes=MakerQuotes(dict.fromkeys(maker, 60 * NS_PER_S), touch),
    )  # fmt: skip
    return router, venue, records


async def _bar(router: OrderRouter, strategy: str, target: float, k: int) -> str | None:
    now = T0 + (10 + k) * NS_PER_S
    return await router.rebalance(strategy, target, price=MARK, now_ns=now, last_trade_ns=now,
                                  uses_forecast=False, forecast_age_s=None,
                                  decision_id=None)  # fmt: skip


def _kinds(records: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [d for k, d in records if k == kind]


def test_a_dust_position_is_closed_with_the_flip_instead_of_alone_every_bar() -> None:
    router, venue, records = _router([(MARK, SELL)])
    a, b = router.books["a"], router.books["b"]
    a.apply_fill(Side.BUY, D("0.013"), D(str(MARK)), D(0))  # 3.08 USDT: below the minimum
    b.apply_fill(Side.SELL, D("1"), D(str(MARK)), D(0))  # the venue's net stays short
    assert D("0.013") * D(str(MARK)) < venue.venue.instrument("BTCUSDT").min_notional
    assert not router._venue_reduces("a", Side.SELL, D("0.013"))  # so not reduce-only

    sent = asyncio.run(_bar(router, "a", -0.5, 0))
    assert sent is not None
    (order,) = _kinds(records, "orders")
    # One sell of the dust and the short together: 0.013 + 0.5 × 10,000 / 236.9 = 21.1189 BTC
    # (by hand), on the lot.
    assert order["side"] == "Sell" and D(order["qty"]) == D("21.118")
    assert order["reduce_only"] is False
    assert [u["status"] for u in _kinds(records, "order_updates")] == ["New"]  # accepted
    (dust,) = _kinds(records, "risk_events")
    assert dust["type"] == "dust" and dust["strategy"] == "a" and dust["qty"] == "0.013"
    assert dust["action"] == "closed with the entry" and "minimum 5 USDT" in dust["reason"]
    assert venue.venue.orders[sent].request.qty == D("21.118")


def test_a_maker_quote_worth_less_than_the_minimum_at_its_price_is_not_sent_and_noted_once() -> (
    None
):
    # A seller hit 225.0, then a buyer paid 236.9: a buy quote joins the bid at 225.0, where
    # 0.022 BTC is worth 4.95 USDT (5.21 at the last price, which sizes the target).
    router, venue, records = _router([(225.0, SELL), (MARK, BUY)], maker=("a",))
    target = 0.0225 * MARK / 10_000
    for k in range(5):  # five bars asking for the same residual
        assert asyncio.run(_bar(router, "a", target, k)) is None
    assert _kinds(records, "orders") == [] and venue.venue.orders == {}
    (dust,) = _kinds(records, "risk_events")
    assert dust["type"] == "dust" and dust["side"] == "Buy" and dust["qty"] == "0.022"
    assert dust["action"] == "not sent" and "4.95" in dust["reason"]
    # A target the venue accepts goes out as before (and a later residual would be noted anew).
    assert asyncio.run(_bar(router, "a", 0.05, 6)) is not None
    assert len(_kinds(records, "orders")) == 1 and router.dust == {}


def test_the_report_counts_each_strategys_dust(tmp_path: Path) -> None:
    from tests.unit.test_trading_results import T0 as DAY
    from tests.unit.test_trading_results import _record_run, _settings

    settings = _settings(tmp_path)
    _record_run(settings, "dusty", DAY, n=40)
    with Journal.open(settings, run_id="dusty", clock=SimClock(DAY + 300 * NS_PER_S)) as j:
        for qty, action in (("0.013", "closed with the entry"), ("0.022", "not sent"),
                            ("0.021", "not sent")):  # fmt: skip
            j.record("risk_events", {"type": "dust", "strategy": "sma", "side": "Sell",
                                     "qty": qty, "reason": "below 5 USDT", "action": action})  # fmt: skip
        assert j.sync(30)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        notes = collect(journal, "dusty", verdict=VerdictConfig(resamples=100)).report.notes
    assert "sma: 1 residual below the venue's minimum order, closed with the entry (dust)" in notes
    assert "sma: 2 residuals below the venue's minimum order, not sent (dust)" in notes
