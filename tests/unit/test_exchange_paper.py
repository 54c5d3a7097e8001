"""PaperExchange on the real tape: fills, fees, accounting, rejections with Bybit's codes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.records import BUY, Trade
from cryptoarena.trading.exchange.errors import (
    InsufficientBalanceError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
)
from cryptoarena.trading.exchange.models import (
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.exchange.venue import to_decimal

from tests.fakes.tape import real_tape

D = Decimal


def make(latency_ms: float = 100.0, balance: str = "10000") -> tuple[PaperExchange, SimClock]:
    tape = real_tape(1)
    clock = SimClock(tape[0].ts)
    cfg = PaperExchangeConfig(latency_ms=latency_ms, initial_balance=D(balance))
    return PaperExchange(cfg, clock=clock), clock


def feed(ex: PaperExchange, clock: SimClock, trades: list[Trade]) -> list[Fill]:
    fills = []
    for t in trades:
        clock.advance_to(t.ts)
        fills += ex.on_trades([t])
    return fills


async def test_market_buy_walks_later_buy_trades_after_latency() -> None:
    ex, clock = make(latency_ms=100)
    tape = real_tape(400)
    feed(ex, clock, tape[:10])
    placed_ns = clock.now_ns()
    order = await ex.place_order(OrderRequest("m1", "BTCUSDT", Side.BUY, D("1.5")))
    assert order.status is OrderStatus.NEW and order.qty == D("1.5")
    fills = feed(ex, clock, tape[10:])
    expected, left = [], D("1.5")
    for t in tape[10:]:
        if left <= 0:
            break
        if t.ts >= placed_ns + 100_000_000 and t.side == BUY:
            q = min(left, to_decimal(t.size))
            expected.append((to_decimal(t.price), q))
            left -= q
    assert [(f.price, f.qty) for f in fills] == expected
    assert all(not f.is_maker and f.fee == f.price * f.qty * D("0.00055") for f in fills)
    pos = await ex.position("BTCUSDT")
    assert pos.qty == D("1.5")
    cost = sum(p * q for p, q in expected)
    assert pos.avg_price == cost / D("1.5")
    bal = await ex.balance()
    assert bal.wallet == D(10000) - sum(f.fee for f in fills)
    final = await ex.get_order("BTCUSDT", "m1")
    assert final is not None and final.status is OrderStatus.FILLED
    assert final.filled_qty == D("1.5") and final.avg_price == pos.avg_price


async def test_limit_rests_then_fills_as_maker_when_the_tape_trades_through() -> None:
    ex, clock = make()
    tape = real_tape(3000)
    feed(ex, clock, tape[:5])
    last = to_decimal(tape[4].price)
    low = min(to_decimal(t.price) for t in tape[5:])
    price = (last + low) / 2  # a level the tape later trades through
    order = await ex.place_order(
        OrderRequest("l1", "BTCUSDT", Side.BUY, D("0.010"), OrderType.LIMIT, price)
    )
    assert order.price == (price / D("0.1")).quantize(D(1)) * D("0.1")  # rounded to tick
    fills = feed(ex, clock, tape[5:])
    assert fills, "the tape went below the limit, so it must fill"
    assert all(f.price == order.price and f.is_maker for f in fills)
    assert sum(f.qty for f in fills) == D("0.010")
    assert fills[0].fee == order.price * fills[0].qty * D("0.0002")
    first_through = next(t for t in tape[5:] if to_decimal(t.price) < order.price)
    assert fills[0].ts_ns == first_through.ts


async def test_partial_fills_then_cancel_keeps_the_filled_part() -> None:
    ex, clock = make(balance="1000000")
    tape = real_tape(3000)
    feed(ex, clock, tape[:5])
    big = D("200")  # far more than the tape trades through the level
    order = await ex.place_order(
        OrderRequest("p1", "BTCUSDT", Side.SELL, big, OrderType.LIMIT, D("9690.0"))
    )
    fills = feed(ex, clock, tape[5:1500])
    filled = sum((f.qty for f in fills), D(0))
    assert D(0) < filled < big
    now = await ex.get_order("BTCUSDT", "p1")
    assert now is not None and now.status is OrderStatus.PARTIALLY_FILLED
    assert [o.client_id for o in await ex.open_orders("BTCUSDT")] == ["p1"]
    cancelled = await ex.cancel_order("BTCUSDT", "p1")
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.filled_qty == filled
    assert feed(ex, clock, tape[1500:]) == []
    assert (await ex.position("BTCUSDT")).qty == -filled
    assert await ex.open_orders("BTCUSDT") == []
    with pytest.raises(OrderNotFoundError) as err:
        await ex.cancel_order("BTCUSDT", "p1")
    assert err.value.code == 110001
    assert order.exchange_id == cancelled.exchange_id


async def test_round_trip_realises_pnl_minus_fees() -> None:
    ex, clock = make(latency_ms=0)
    tape = real_tape(2000)
    feed(ex, clock, tape[:3])
    await ex.place_order(OrderRequest("a", "BTCUSDT", Side.BUY, D("0.2")))
    fills = feed(ex, clock, tape[3:1000])
    await ex.place_order(OrderRequest("b", "BTCUSDT", Side.SELL, D("0.2"), reduce_only=True))
    fills += feed(ex, clock, tape[1000:])
    buys = [f for f in fills if f.side is Side.BUY]
    sells = [f for f in fills if f.side is Side.SELL]
    assert sum(f.qty for f in buys) == sum(f.qty for f in sells) == D("0.2")
    pnl = sum(f.price * f.qty for f in sells) - sum(f.price * f.qty for f in buys)
    fees = sum(f.fee for f in fills)
    bal = await ex.balance()
    assert bal.wallet == D(10000) + pnl - fees
    assert bal.available == bal.wallet  # flat: no margin in use
    pos = await ex.position("BTCUSDT")
    assert pos.qty == 0 and pos.avg_price == 0


async def test_rejections_carry_bybit_codes() -> None:
    ex, clock = make(balance="100")
    feed(ex, clock, real_tape(3))
    cases = [
        (OrderRequest("r1", "BTCUSDT", Side.BUY, D("0.0004")), InvalidOrderError, 110017),
        (OrderRequest("r2", "BTCUSDT", Side.BUY, D("5000")), InvalidOrderError, 10001),
        (
            OrderRequest("r3", "BTCUSDT", Side.BUY, D("0.001"), OrderType.LIMIT, D("1000")),
            InvalidOrderError,
            110094,
        ),
        (OrderRequest("r4", "NOPEUSDT", Side.BUY, D("1")), InvalidOrderError, 10001),
        (OrderRequest("r5", "BTCUSDT", Side.BUY, D("1")), InsufficientBalanceError, 110007),
        (
            OrderRequest("r6", "BTCUSDT", Side.SELL, D("0.01"), reduce_only=True),
            OrderRejectedError,
            110017,
        ),
        (
            OrderRequest("r7", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, None),
            InvalidOrderError,
            10001,
        ),
    ]
    for request, error, code in cases:
        with pytest.raises(error) as exc:
            await ex.place_order(request)
        assert exc.value.code == code, request
    assert await ex.open_orders("BTCUSDT") == []
    assert (await ex.balance()).wallet == D(100)


async def test_rounding_and_idempotent_client_id() -> None:
    ex, clock = make()
    feed(ex, clock, real_tape(3))
    req = OrderRequest("same", "BTCUSDT", Side.BUY, D("0.0129"), OrderType.LIMIT, D("9000.06"))
    first = await ex.place_order(req)
    assert first.qty == D("0.012") and first.price == D("9000.1")
    again = await ex.place_order(
        OrderRequest("same", "BTCUSDT", Side.SELL, D("5"), OrderType.LIMIT, D("1"))
    )
    assert again == first
    assert len(await ex.open_orders("BTCUSDT")) == 1


async def test_ioc_and_post_only_resolve_on_the_first_trade_after_arrival() -> None:
    ex, clock = make(latency_ms=0)
    tape = real_tape(200)
    feed(ex, clock, tape[:3])
    last = to_decimal(tape[2].price)
    far = last - D(50)
    ioc = await ex.place_order(
        OrderRequest("ioc", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, far, TimeInForce.IOC)
    )
    post = await ex.place_order(
        OrderRequest(
            "po", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, last + 20, TimeInForce.POST_ONLY
        )
    )
    feed(ex, clock, tape[3:10])
    for order in (ioc, post):
        now = await ex.get_order("BTCUSDT", order.client_id)
        assert now is not None and now.status is OrderStatus.CANCELLED and now.filled_qty == 0
    assert (await ex.get_order("BTCUSDT", "po")).reject_reason == "EC_PostOnlyWillTakeLiquidity"  # type: ignore[union-attr]


async def test_updates_stream_orders_then_fills_and_nothing_lost_before_subscribe() -> None:
    ex, clock = make(latency_ms=0)
    tape = real_tape(300)
    feed(ex, clock, tape[:3])
    await ex.place_order(OrderRequest("u1", "BTCUSDT", Side.SELL, D("0.05")))
    fills = feed(ex, clock, tape[3:])
    stream = ex.updates()
    await ex.close()
    events = [e async for e in stream]
    assert isinstance(events[0], Order) and events[0].status is OrderStatus.NEW
    got_fills = [e for e in events if isinstance(e, Fill)]
    assert got_fills == fills and all(f.side is Side.SELL for f in fills)
    final = [e for e in events if isinstance(e, Order)][-1]
    assert final.status is OrderStatus.FILLED
