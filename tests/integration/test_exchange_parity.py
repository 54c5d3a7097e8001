"""The same scripted orders on PaperExchange and on BybitExchange + fake, over the same real tape,
give the same fills and fees (one code path for paper and live)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.records import Trade
from cryptoarena.trading.exchange.base import Exchange
from cryptoarena.trading.exchange.models import OrderRequest, OrderType, Side, TimeInForce
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.exchange.venue import VenueConfig

from tests.fakes.tape import real_tape
from tests.integration.bybit_harness import Collector, bybit_on_fake, wait_for

D = Decimal
VENUE = dict(
    latency_ms=80.0, initial_balance=D("20000"), maker_fee=D("0.0002"), taker_fee=D("0.00055")
)
pytestmark = pytest.mark.timeout(90)

Feed = Callable[[list[Trade]], Awaitable[None]]


async def script(ex: Exchange, feed: Feed, tape: list[Trade]) -> None:
    """Market in, resting limits both sides, a cancel, an IOC, a reduce-only exit."""
    await feed(tape[:20])
    await ex.place_order(OrderRequest("s-mkt", "BTCUSDT", Side.BUY, D("0.3")))
    await ex.place_order(
        OrderRequest("s-ask", "BTCUSDT", Side.SELL, D("0.1"), OrderType.LIMIT, D("9688.5"))
    )
    await ex.place_order(
        OrderRequest("s-bid", "BTCUSDT", Side.BUY, D("0.2"), OrderType.LIMIT, D("9670.05"))
    )
    await feed(tape[20:600])
    if any(o.client_id == "s-bid" for o in await ex.open_orders("BTCUSDT")):
        await ex.cancel_order("BTCUSDT", "s-bid")
    await ex.place_order(
        OrderRequest(
            "s-ioc", "BTCUSDT", Side.SELL, D("0.05"), OrderType.LIMIT, D("9600"), TimeInForce.IOC
        )
    )
    await feed(tape[600:900])
    pos = await ex.position("BTCUSDT")
    if pos.qty > 0:
        await ex.place_order(
            OrderRequest("s-exit", "BTCUSDT", Side.SELL, pos.qty, reduce_only=True)
        )
    await feed(tape[900:])


def summary(fills: list[Any]) -> list[tuple[str, str, Decimal, Decimal, Decimal, bool]]:
    return [(f.client_id, f.side.value, f.price, f.qty, f.fee, f.is_maker) for f in fills]


async def run_paper(tape: list[Trade]) -> tuple[list[Any], Decimal, Decimal]:
    clock = SimClock(tape[0].ts)
    ex = PaperExchange(PaperExchangeConfig(**VENUE), clock=clock)
    stream = Collector(ex.updates())
    fills: list[Any] = []

    async def feed(trades: list[Trade]) -> None:
        clock.advance_to(trades[-1].ts)
        fills.extend(ex.on_trades(trades))

    await script(ex, feed, tape)
    await wait_for(lambda: len(stream.fills) == len(fills))
    assert stream.fills == fills
    pos, bal = await ex.position("BTCUSDT"), await ex.balance()
    await stream.stop()
    return stream.fills, pos.qty, bal.wallet


async def run_bybit(tape: list[Trade]) -> tuple[list[Any], Decimal, Decimal]:
    async with bybit_on_fake(VenueConfig(**VENUE)) as (ex, account, _fake):
        stream = Collector(ex.updates())

        async def feed(trades: list[Trade]) -> None:
            account.trade(trades)
            await wait_for(lambda: len(stream.fills) == len(account.matching.executions))

        await script(ex, feed, tape)
        pos, bal = await ex.position("BTCUSDT"), await ex.balance()
        await stream.stop()
        return stream.fills, pos.qty, bal.wallet


@pytest.mark.parametrize("venue", ["paper", "bybit+fake"])
async def test_same_script_same_fills_and_fees(venue: str) -> None:
    tape = real_tape(1500, start=100)
    reference, ref_pos, ref_wallet = await run_paper(tape)
    fills, pos, wallet = await (run_paper(tape) if venue == "paper" else run_bybit(tape))
    assert summary(fills) == summary(reference)
    assert pos == ref_pos and wallet == ref_wallet
    # The script exercises both fee schedules and several orders.
    assert {f.is_maker for f in fills} == {True, False}
    assert {f.client_id for f in fills} >= {"s-mkt", "s-exit"}
    for f in fills:
        rate = D("0.0002") if f.is_maker else D("0.00055")
        assert f.fee == f.price * f.qty * rate
    assert [f.ts_ns // 1_000_000 for f in fills] == [f.ts_ns // 1_000_000 for f in reference]
