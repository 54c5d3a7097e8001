"""The bar fill rule of the one simulated venue (``SimVenue.on_bar``) on hand-made bars (and the
shipped klines): next open plus slippage for market orders, trade-through for limits, Bybit
fees; submission, margin, books and amendments are the venue's own, as on the tape."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from cryptoarena.data.loaders import load_binance_klines
from cryptoarena.data.records import Bar, bars_to_records
from cryptoarena.data.samples import sample_path
from cryptoarena.trading.exchange.errors import InsufficientBalanceError, OrderRejectedError
from cryptoarena.trading.exchange.models import (
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.exchange.venue import Execution, SimVenue, VenueConfig

D = Decimal
M = 60 * 10**9
T0 = 1_710_115_200 * 10**9


def bar(i: int, o: float, h: float, low: float, c: float, v: float = 10.0) -> Bar:
    return Bar(T0 + i * M, o, h, low, c, v, (o + c) / 2, 5, v / 2, v / 2)


def lim(cid: str, side: Side, qty: str, price: str, tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:  # fmt: skip
    return OrderRequest(cid, "BTCUSDT", side, D(qty), OrderType.LIMIT, D(price), tif)


def bar_venue(**config: object) -> SimVenue:
    """The venue a bar backtest uses: no latency (a bar is the model's smallest step)."""
    return SimVenue(VenueConfig(latency_ms=0, **config), name="bars")  # type: ignore[arg-type]


def fills(events: list) -> list[tuple[str, Decimal, Decimal, bool]]:  # type: ignore[type-arg]
    return [
        (e.fill.client_id, e.fill.price, e.fill.qty, e.fill.is_maker)
        for e in events
        if isinstance(e, Execution)
    ]


def test_market_orders_fill_at_the_next_open_plus_slippage_with_taker_fee() -> None:
    v = bar_venue(slippage_bps=D("2"))
    v.on_bar(bar(0, 100, 101, 99, 100), "BTCUSDT")
    v.submit(OrderRequest("b", "BTCUSDT", Side.BUY, D("1")), T0 + M)  # at bar 0's close
    v.submit(OrderRequest("s", "BTCUSDT", Side.SELL, D("0.5")), T0 + M)
    events = v.on_bar(bar(1, 200, 210, 190, 205), "BTCUSDT")
    assert fills(events) == [("b", D("200.0400"), D("1"), False), ("s", D("199.9600"), D("0.5"), False)]  # fmt: skip
    ex = [e for e in events if isinstance(e, Execution)]
    assert ex[0].fill.fee == D("200.0400") * D("0.00055") and ex[0].fill.ts_ns == T0 + M


def test_an_order_is_not_seen_by_the_bar_it_was_placed_in() -> None:
    v = bar_venue()
    v.on_bar(bar(0, 100, 101, 99, 100), "BTCUSDT")
    v.submit(OrderRequest("b", "BTCUSDT", Side.BUY, D("1")), T0 + M + 1)  # inside bar 1
    assert v.on_bar(bar(1, 100, 101, 99, 100), "BTCUSDT") == []
    assert len(fills(v.on_bar(bar(2, 100, 101, 99, 100), "BTCUSDT"))) == 1


def test_a_resting_limit_fills_at_its_price_only_when_a_bar_trades_through() -> None:
    v = bar_venue()
    v.on_bar(bar(0, 100, 101, 99, 100), "BTCUSDT")
    v.submit(lim("b", Side.BUY, "1", "98.0"), T0 + M)
    v.submit(lim("s", Side.SELL, "1", "102.0"), T0 + M)
    assert v.on_bar(bar(1, 100, 102, 98, 100), "BTCUSDT") == []  # low and high touch: no fills
    got = fills(v.on_bar(bar(2, 100, 102.5, 97.9, 101), "BTCUSDT"))
    assert got == [("b", D("98.0"), D("1"), True), ("s", D("102.0"), D("1"), True)]
    assert v.accounts[""].fees_paid == (D("98.0") + D("102.0")) * D("0.0002")


def test_a_limit_beyond_the_open_takes_and_post_only_is_cancelled() -> None:
    v = bar_venue(slippage_bps=D("20"))
    v.on_bar(bar(0, 100, 101, 99, 100), "BTCUSDT")
    v.submit(lim("cap", Side.BUY, "1", "100.1"), T0 + M)  # open 100, +20 bp = 100.2 > limit
    v.submit(lim("po", Side.BUY, "1", "100.0", TimeInForce.POST_ONLY), T0 + M)
    v.submit(lim("ioc", Side.SELL, "1", "101.0", TimeInForce.IOC), T0 + M)  # rests: cancelled
    events = v.on_bar(bar(1, 100, 100.5, 99.5, 100), "BTCUSDT")
    assert fills(events) == [("cap", D("100.1"), D("1"), False)]
    status = {o.client_id: (o.status, o.reject_reason) for o in events if not isinstance(o, Execution)}  # fmt: skip
    assert status["po"] == (OrderStatus.CANCELLED, "EC_PostOnlyWillTakeLiquidity")
    assert status["ioc"][0] is OrderStatus.CANCELLED


def test_volume_cap_gives_partial_fills_bar_after_bar() -> None:
    v = bar_venue(max_volume_fraction=D("0.1"))
    v.on_bar(bar(0, 100, 101, 99, 100), "BTCUSDT")
    v.submit(lim("b", Side.BUY, "2.5", "99.0"), T0 + M)
    got = []
    for i, low in enumerate((98.0, 98.5, 98.9), start=1):
        got += [q for _, _, q, _ in fills(v.on_bar(bar(i, 100, 101, low, 100, v=10.0), "BTCUSDT"))]
    assert got == [D("1.000"), D("1.000"), D("0.500")]
    assert v.orders["b"].status is OrderStatus.FILLED


def test_reduce_only_is_capped_by_the_book_position_and_books_are_separate() -> None:
    v = bar_venue()
    v.on_bar(bar(0, 100, 101, 99, 100), "BTCUSDT")
    with pytest.raises(OrderRejectedError):
        v.submit(OrderRequest("r0", "BTCUSDT", Side.SELL, D("1"), reduce_only=True), T0 + M)
    v.submit(OrderRequest("b", "BTCUSDT", Side.BUY, D("1")), T0 + M, book="00")
    v.submit(OrderRequest("o", "BTCUSDT", Side.SELL, D("3")), T0 + M, book="01")
    v.on_bar(bar(1, 100, 101, 99, 100), "BTCUSDT")
    v.submit(OrderRequest("r", "BTCUSDT", Side.SELL, D("5"), reduce_only=True), T0 + 2 * M, "00")
    assert fills(v.on_bar(bar(2, 100, 101, 99, 100), "BTCUSDT")) == [
        ("r", D("99.9900"), D("1"), False)
    ]
    assert v.book("00").position_state("BTCUSDT").qty == 0
    assert v.book("01").position_state("BTCUSDT").qty == D("-3")


def test_on_the_shipped_klines_market_fills_are_the_next_open_plus_slippage() -> None:
    """Alternate buy/sell market orders each minute: an independent vectorised check."""
    frame, _ = load_binance_klines(sample_path("BTCUSDT-1m-2025-03-11.csv.gz"))
    bars = bars_to_records(frame)
    v = bar_venue(slippage_bps=D("1.5"), initial_balance=D("10000000"))
    got = []
    for i, b in enumerate(bars):
        got += [e.fill for e in v.on_bar(b, "BTCUSDT") if isinstance(e, Execution)]
        side = Side.BUY if i % 2 == 0 else Side.SELL
        v.submit(OrderRequest(f"o{i}", "BTCUSDT", side, D("0.01")), b.ts + M)
    opens = frame["open"].to_numpy()[1:]
    sign = np.where(np.arange(len(opens)) % 2 == 0, 1.0, -1.0)
    expected = opens * (1 + sign * 1.5e-4)
    assert len(got) == len(bars) - 1
    np.testing.assert_allclose([float(f.price) for f in got], expected, rtol=1e-12)
    assert [f.ts_ns for f in got] == frame["ts"].tolist()[1:]


@pytest.mark.timeout(30)
async def test_bar_exchange_speaks_the_exchange_protocol() -> None:
    from cryptoarena.clock import SimClock
    from cryptoarena.trading.exchange.errors import OrderNotFoundError
    from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig

    clock = SimClock(T0)
    ex = PaperExchange(PaperExchangeConfig(slippage_bps=D("0"), latency_ms=0), clock=clock)
    await ex.start()
    stream = ex.updates()
    ex.on_bars([bar(0, 100, 101, 99, 100)], "BTCUSDT")
    clock.advance_to(T0 + M)  # bar 0 closed: the strategies decide now
    await ex.place_order(lim("run-00-aa-1", Side.BUY, "1", "99.0"))
    await ex.place_order(OrderRequest("run-01-aa-1", "BTCUSDT", Side.SELL, D("2")))
    assert [f.price for f in ex.on_bars([bar(1, 100.5, 101, 99.0, 100)], "BTCUSDT")] == [D("100.5")]
    clock.advance_to(T0 + 2 * M)
    await ex.amend_order("BTCUSDT", "run-00-aa-1", price=D("99.5"))
    got = ex.on_bars([bar(2, 100, 101, 99.4, 100)], "BTCUSDT")
    assert [(f.client_id, f.price, f.is_maker) for f in got] == [("run-00-aa-1", D("99.5"), True)]
    assert ex.venue.book("00").position_state("BTCUSDT").qty == D("1")
    assert (await ex.position("BTCUSDT")).qty == D("-1")  # the books' sum
    with pytest.raises(OrderNotFoundError):
        await ex.amend_order("BTCUSDT", "run-00-aa-1", price=D("98"))
    await ex.close()
    events = [e async for e in stream]
    assert sum(1 for e in events if hasattr(e, "exec_id")) == 2


def test_an_order_beyond_the_books_margin_is_refused_on_bars_as_on_the_tape() -> None:
    # 10,000 USDT at 10x leverage: 1 BTC at 100,000 needs 10,000 of margin plus the taker fee.
    v = bar_venue()
    v.on_bar(bar(0, 100_000, 100_100, 99_900, 100_000), "BTCUSDT")
    with pytest.raises(InsufficientBalanceError):
        v.submit(OrderRequest("big", "BTCUSDT", Side.BUY, D("1")), T0 + M)
    order, created = v.submit(OrderRequest("ok", "BTCUSDT", Side.BUY, D("0.9")), T0 + M)
    assert created and order.status is OrderStatus.NEW


@pytest.mark.timeout(30)
async def test_a_bar_runs_balance_holds_margin_and_its_position_carries_unrealised_pnl() -> None:
    from cryptoarena.clock import SimClock
    from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig

    clock = SimClock(T0)
    ex = PaperExchange(PaperExchangeConfig(slippage_bps=D("0"), latency_ms=0), clock=clock)
    ex.on_bars([bar(0, 100, 101, 99, 100)], "BTCUSDT")
    clock.advance_to(T0 + M)
    await ex.place_order(OrderRequest("run-00-aa-1", "BTCUSDT", Side.BUY, D("10")))
    ex.on_bars([bar(1, 100, 111, 99, 110)], "BTCUSDT")  # filled at 100, marked at the close 110
    position = await ex.position("BTCUSDT")
    assert position.qty == D("10") and position.unrealised_pnl == D("100")
    balance = await ex.balance("USDT")
    assert balance.wallet == D("10000") - D("1000") * D("0.00055")
    # available = wallet + unrealised − the position's margin (1,100 notional / 10)
    assert balance.available == balance.wallet + D("100") - D("110")


@pytest.mark.timeout(30)
async def test_an_amendment_lands_at_the_next_bar_and_is_published_there() -> None:
    from cryptoarena.clock import SimClock
    from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig

    clock = SimClock(T0)
    ex = PaperExchange(PaperExchangeConfig(latency_ms=0), clock=clock)
    stream = ex.updates()
    ex.on_bars([bar(0, 100, 101, 99, 100)], "BTCUSDT")
    clock.advance_to(T0 + M)
    await ex.place_order(lim("run-00-aa-1", Side.BUY, "1", "95.0"))
    await ex.amend_order("BTCUSDT", "run-00-aa-1", price=D("99.5"))
    assert (await ex.get_order("BTCUSDT", "run-00-aa-1")).price == D("95.0")  # type: ignore[union-attr]
    assert [f.price for f in ex.on_bars([bar(1, 100, 101, 99.4, 100)], "BTCUSDT")] == [D("99.5")]
    await ex.close()
    prices = [e.price for e in [e async for e in stream] if isinstance(e, Order)]
    assert prices == [D("95.0"), D("99.5"), D("99.5")]  # accepted, amended (landed), filled


def test_the_paper_venue_declares_bar_fills_and_a_live_venue_does_not() -> None:
    from cryptoarena.trading.exchange.base import LIVE_VENUE
    from cryptoarena.trading.exchange.paper import PaperExchange

    assert PaperExchange.capabilities.bar_fills and not LIVE_VENUE.bar_fills
