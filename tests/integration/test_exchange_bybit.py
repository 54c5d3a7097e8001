"""BybitExchange with the real pybit client against the fake Bybit: asserted on what it received."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptoarena.trading.exchange.models import OrderRequest, OrderStatus, OrderType, Side
from cryptoarena.trading.exchange.queues import QueueModel
from cryptoarena.trading.exchange.venue import VenueConfig, to_decimal

from tests.fakes.tape import real_tape
from tests.integration.bybit_harness import Collector, bybit_on_fake, wait_for

D = Decimal
pytestmark = pytest.mark.timeout(60)


async def test_place_fill_partial_cancel_position_wallet() -> None:
    tape = real_tape(2000)
    async with bybit_on_fake(VenueConfig(latency_ms=0, initial_balance=D("1000000"))) as (
        ex,
        account,
        _fake,
    ):
        updates = Collector(ex.updates())
        account.trade(tape[:5])
        market = await ex.place_order(OrderRequest("mkt-1", "BTCUSDT", Side.BUY, D("0.0509")))
        assert market.qty == D("0.050") and market.status is OrderStatus.NEW
        resting = await ex.place_order(
            OrderRequest("lim-1", "BTCUSDT", Side.SELL, D("200"), OrderType.LIMIT, D("9690.04"))
        )
        assert resting.price == D("9690.0")
        creates = account.rest.received("/v5/order/create")
        assert [r.json() for r in creates] == [
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Market",
                "qty": "0.05",
                "orderLinkId": "mkt-1",
                "positionIdx": 0,
            },
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": "Sell",
                "orderType": "Limit",
                "qty": "200",
                "orderLinkId": "lim-1",
                "positionIdx": 0,
                "price": "9690",
                "timeInForce": "GTC",
            },
        ]
        assert all(r.headers["X-BAPI-API-KEY"] and r.ret_code == 0 for r in creates)

        account.trade(tape[5:1500])
        await wait_for(lambda: any(o.status is OrderStatus.FILLED for o in updates.orders("mkt-1")))
        await wait_for(lambda: len(updates.fills) == len(account.matching.executions))
        open_now = await ex.open_orders("BTCUSDT")
        assert [o.client_id for o in open_now] == ["lim-1"]
        assert open_now[0].status is OrderStatus.PARTIALLY_FILLED

        fake_fills = account.matching.executions
        assert [(f.exec_id, str(f.price), str(f.qty)) for f in updates.fills] == [
            (r["execId"], r["execPrice"], r["execQty"]) for r in fake_fills
        ]
        cancelled = await ex.cancel_order("BTCUSDT", "lim-1")
        assert cancelled.status is OrderStatus.CANCELLED
        assert D(0) < cancelled.filled_qty < D(200)
        assert account.rest.received("/v5/order/cancel")[0].json()["orderLinkId"] == "lim-1"

        venue = account.matching.venue
        pos = await ex.position("BTCUSDT")
        assert (
            pos.qty
            == venue.account.position_state("BTCUSDT").qty
            == D("0.05") - cancelled.filled_qty
        )
        bal = await ex.balance("USDT")
        assert bal.wallet == venue.account.wallet
        assert bal.wallet == D("1000000") + sum(
            (D(r["execPnl"]) - D(r["execFee"]) for r in fake_fills), D(0)
        )
        # Every private push arrives in Bybit's order for a fill: order, execution, position, wallet.
        topics = [m["topic"] for m in account.private_ws.pushed]
        first_exec = topics.index("execution")
        assert topics[first_exec - 1 : first_exec + 3] == [
            "order",
            "execution",
            "position",
            "wallet",
        ]
        await updates.stop()


async def test_start_reconciles_existing_orders_and_refuses_bad_orders_before_sending() -> None:
    tape = real_tape(20)
    async with bybit_on_fake(start=False) as (ex, account, _fake):
        account.trade(tape)
        # An order left open by an earlier run, on the exchange only.
        venue = account.matching.venue
        venue.submit(
            OrderRequest("old-1", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, D("9000")), 0
        )
        await ex.start()
        assert [o.client_id for o in await ex.open_orders("BTCUSDT")] == ["old-1"]
        assert await ex.place_order(
            OrderRequest("old-1", "BTCUSDT", Side.SELL, D("1"))
        ) == await ex.get_order("BTCUSDT", "old-1")
        paths = [r.path for r in account.rest.requests]
        for path in (
            "/v5/market/time",
            "/v5/market/instruments-info",
            "/v5/order/realtime",
            "/v5/position/list",
            "/v5/account/wallet-balance",
        ):
            assert path in paths
        from cryptoarena.trading.exchange.errors import InvalidOrderError

        before = len(account.rest.requests)
        with pytest.raises(InvalidOrderError) as err:
            await ex.place_order(OrderRequest("tiny", "BTCUSDT", Side.BUY, D("0.0001")))
        assert err.value.code == 110017
        with pytest.raises(InvalidOrderError) as err:
            await ex.place_order(
                OrderRequest("cheap", "BTCUSDT", Side.BUY, D("0.001"), OrderType.LIMIT, D("100"))
            )
        assert err.value.code == 110094
        assert len(account.rest.requests) == before  # nothing sent
        assert to_decimal(tape[-1].price) == venue.last_price["BTCUSDT"]


async def test_market_endpoints_with_real_pybit() -> None:
    from cryptoarena.config import BybitEnv
    from cryptoarena.trading.exchange.bybit_http import make_http

    tape = real_tape(600)
    async with bybit_on_fake(start=False) as (_ex, account, fake):
        account.trade(tape)
        http = make_http(BybitEnv.MAINNET, None, None, rest_url=fake.http_url)
        kline = http.get_kline(category="linear", symbol="BTCUSDT", interval="1", limit=3)
        rows = kline["result"]["list"]
        assert len(rows) == 3 and all(len(r) == 7 and isinstance(r[0], str) for r in rows)
        assert int(rows[0][0]) > int(rows[1][0])  # newest first
        minute = [t for t in tape if (t.ts // 1_000_000) // 60_000 * 60_000 == int(rows[0][0])]
        assert float(rows[0][4]) == minute[-1].price and float(rows[0][1]) == minute[0].price
        info = http.get_instruments_info(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        assert info["lotSizeFilter"]["minNotionalValue"] == "5"
        assert info["priceFilter"]["tickSize"] == "0.1"
        assert int(http.get_server_time()["result"]["timeSecond"]) > 0
        recent = http.get_public_trade_history(category="linear", symbol="BTCUSDT", limit=5)
        assert [r["execId"] for r in recent["result"]["list"]] == [t.trade_id for t in tape[-5:]][
            ::-1
        ]
        assert account.rest.received("/v5/market/kline")[0].reply_headers["X-Bapi-Limit"] == "50"


async def test_concurrent_orders_each_land_once() -> None:
    import asyncio

    async with bybit_on_fake() as (ex, account, _fake):
        account.trade(real_tape(5))
        requests = [
            OrderRequest(f"par-{n}", "BTCUSDT", Side.BUY, D("0.001"), OrderType.LIMIT, D(8000 + n))
            for n in range(20)
        ]
        # Every request twice, concurrently: the caller's retry racing the first attempt.
        orders = await asyncio.gather(*(ex.place_order(r) for r in requests + requests))
        assert {o.client_id for o in orders} == {r.client_id for r in requests}
        assert account.orders_created() == 20
        codes = [r.ret_code for r in account.rest.received("/v5/order/create")]
        assert codes.count(0) == 20 and set(codes) <= {0, 110072}  # duplicates refused
        assert len(await ex.open_orders("BTCUSDT")) == 20
        await asyncio.gather(*(ex.cancel_order("BTCUSDT", r.client_id) for r in requests))
        assert await ex.open_orders("BTCUSDT") == []


async def test_post_only_limit_amend_and_reduce_only_through_real_pybit() -> None:
    from cryptoarena.data.records import BUY, SELL, Trade
    from cryptoarena.trading.exchange.errors import OrderNotFoundError
    from cryptoarena.trading.exchange.models import TimeInForce

    t0 = 1_700_000_000 * 10**9
    n = iter(range(1, 1000))

    def trades(*rows: tuple[str, str, int]) -> list[Trade]:
        out = []
        for price, size, side in rows:
            i = next(n)
            out.append(
                Trade(t0 + i * 1_000_000, float(price), float(size), side, f"h{i}", "BTCUSDT")
            )
        return out

    # The through-rule (no queue ahead): this checks the wire and the order mechanics; queue
    # models have their own tests (test_exchange_queues.py).
    venue = VenueConfig(latency_ms=0, initial_balance=D("100000"), queue_model=QueueModel.NONE)
    async with bybit_on_fake(venue) as (
        ex,
        account,
        _fake,
    ):
        updates = Collector(ex.updates())
        account.trade(trades(("100.0", "1", SELL)))
        await wait_for(lambda: "BTCUSDT" in account.matching.venue.last_price)
        post = OrderRequest(
            "po-1", "BTCUSDT", Side.BUY, D("2"), OrderType.LIMIT, D("99.5"), TimeInForce.POST_ONLY
        )
        await ex.place_order(post)
        crossing = OrderRequest(
            "po-x", "BTCUSDT", Side.BUY, D("1"), OrderType.LIMIT, D("100.5"), TimeInForce.POST_ONLY
        )
        await ex.place_order(crossing)
        amended = await ex.amend_order("BTCUSDT", "po-1", price=D("99.84"), qty=D("1.5"))
        assert amended.client_id == "po-1"
        assert [r.json() for r in account.rest.received("/v5/order/amend")] == [
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "orderLinkId": "po-1",
                "qty": "1.5",
                "price": "99.8",
            }
        ]
        # 99.8 is a touch (no fill), 99.7 goes through: maker fill at 99.8 by the trade's size.
        account.trade(trades(("99.8", "5", SELL), ("99.7", "1", SELL), ("99.6", "3", SELL)))
        await wait_for(lambda: len(updates.fills) == 2)
        assert [(f.price, f.qty, f.is_maker) for f in updates.fills] == [
            (D("99.8"), D("1"), True),
            (D("99.8"), D("0.5"), True),
        ]
        assert updates.fills[0].fee == D("99.8") * D("0.0002")
        x = await ex.get_order("BTCUSDT", "po-x")
        assert x is not None and x.status is OrderStatus.CANCELLED
        assert x.reject_reason == "EC_PostOnlyWillTakeLiquidity"
        with pytest.raises(OrderNotFoundError) as err:
            await ex.amend_order("BTCUSDT", "po-1", price=D("99"))
        assert err.value.code == 110001
        # Close the long with a reduce-only PostOnly sell: reduceOnly reaches the wire.
        close = OrderRequest("ro-1", "BTCUSDT", Side.SELL, D("1.5"), OrderType.LIMIT, D("99.9"),
                             TimeInForce.POST_ONLY, reduce_only=True)  # fmt: skip
        await ex.place_order(close)
        body = account.rest.received("/v5/order/create")[-1].json()
        assert body["reduceOnly"] is True and body["timeInForce"] == "PostOnly"
        account.trade(trades(("100.0", "4", BUY)))
        await wait_for(lambda: len(updates.fills) == 3)
        assert (await ex.position("BTCUSDT")).qty == 0
        await updates.stop()
