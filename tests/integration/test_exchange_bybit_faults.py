"""Fault switches of the fake Bybit against BybitExchange: retries, backoff, re-sync, clear errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptoarena.trading.exchange.bybit import BybitExchange
from cryptoarena.trading.exchange.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    ExchangeError,
    InsufficientBalanceError,
    InvalidOrderError,
)
from cryptoarena.trading.exchange.models import OrderRequest, OrderStatus, OrderType, Side
from cryptoarena.trading.exchange.venue import VenueConfig

from tests.fakes.bybit_account import TEST_KEY, FakeAccount
from tests.fakes.bybit_server import FakeBybit
from tests.fakes.tape import real_tape
from tests.integration.bybit_harness import FAST, Collector, bybit_on_fake, settings_for, wait_for

D = Decimal
CREATE = "/v5/order/create"
pytestmark = pytest.mark.timeout(60)


async def test_create_that_times_out_after_accept_is_not_doubled() -> None:
    async with bybit_on_fake() as (ex, account, _fake):
        account.trade(real_tape(5))
        account.rest.timeout_after_accept(FAST.timeout_s + 0.5)
        order = await ex.place_order(
            OrderRequest("slow-1", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, D("9000"))
        )
        assert order.client_id == "slow-1" and order.status is OrderStatus.NEW
        assert account.orders_created() == 1
        assert len(account.rest.received(CREATE)) == 1  # looked up, not re-sent
        lookups = account.rest.received("/v5/order/realtime")
        assert any("orderLinkId=slow-1" in r.query for r in lookups)
        # A later retry by the caller with the same client id is also a no-op.
        assert await ex.place_order(OrderRequest("slow-1", "BTCUSDT", Side.BUY, D("5"))) == order
        assert account.orders_created() == 1


@pytest.mark.parametrize("lookup_code", [10016, 10003])
async def test_failing_lookup_after_an_ambiguous_create_is_ambiguous(lookup_code: int) -> None:
    """Issue #9.7: the create timed out after Bybit accepted it and every lookup by orderLinkId
    fails (temporarily: 10016, or for good: 10003). The order exists, so the adapter must say
    "ambiguous", never raise a temporary error that the router would retry as a fresh order.
    On the old code: TemporaryExchangeError (10016) or AuthenticationError (10003)."""
    async with bybit_on_fake() as (ex, account, _fake):
        account.trade(real_tape(5))
        account.rest.timeout_after_accept(FAST.timeout_s + 0.5)
        account.rest.fail_next(lookup_code, path="/v5/order/realtime", times=1000)
        request = OrderRequest("amb-1", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, D("9000"))
        with pytest.raises(AmbiguousOrderError, match="amb-1") as err:
            await ex.place_order(request)
        assert "may exist" in str(err.value) or "not found" in str(err.value)
        assert account.orders_created() == 1  # never doubled
        assert account.rest.received("/v5/order/realtime")  # it did ask


async def test_rate_limit_is_retried_after_the_reset_time() -> None:
    async with bybit_on_fake() as (ex, account, _fake):
        account.trade(real_tape(5))
        account.rest.fail_next(10006, path=CREATE)
        await ex.place_order(
            OrderRequest("rl-1", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, D("9000"))
        )
        first, second = account.rest.received(CREATE)
        assert first.ret_code == 10006 and second.ret_code == 0
        reset = int(first.reply_headers["X-Bapi-Limit-Reset-Timestamp"])
        assert int(second.headers["X-BAPI-TIMESTAMP"]) >= reset  # waited for the reset
        assert account.orders_created() == 1


@pytest.mark.parametrize("code", [10002, 10016])
async def test_temporary_read_errors_are_retried(code: int) -> None:
    async with bybit_on_fake() as (ex, account, _fake):
        account.rest.fail_next(code, path="/v5/position/list", times=2)
        pos = await ex.position("BTCUSDT")
        assert pos.qty == 0
        codes = [r.ret_code for r in account.rest.received("/v5/position/list")]
        assert codes[-3:] == [code, code, 0]


async def test_insufficient_balance_is_a_clear_error_and_not_retried() -> None:
    async with bybit_on_fake(VenueConfig(initial_balance=D("50"))) as (ex, account, _fake):
        account.trade(real_tape(5))
        with pytest.raises(InsufficientBalanceError) as err:
            await ex.place_order(
                OrderRequest("big", "BTCUSDT", Side.BUY, D("1"), OrderType.LIMIT, D("9000"))
            )
        assert err.value.code == 110007 and "110007" in str(err.value)
        assert len(account.rest.received(CREATE)) == 1
        account.rest.fail_next(110007, path=CREATE)  # the switch, on an order that would fit
        with pytest.raises(InsufficientBalanceError):
            await ex.place_order(
                OrderRequest("fits", "BTCUSDT", Side.BUY, D("0.001"), OrderType.LIMIT, D("9000"))
            )
        assert account.orders_created() == 0


async def test_bad_secret_gives_one_authentication_error_not_a_retry_loop() -> None:
    account = FakeAccount()
    with FakeBybit(plugins=account.plugins) as fake:
        ex = BybitExchange(settings_for(fake, secret="wrong-secret"), FAST)
        with pytest.raises(AuthenticationError) as err:
            await ex.start()
        await ex.close()
    assert err.value.code == 10004
    assert "origin_string[redacted]" in str(err.value) and TEST_KEY not in str(err.value)
    signed = [r for r in account.rest.requests if "X-BAPI-SIGN" in r.headers]
    assert [r.ret_code for r in signed] == [10004]
    assert account.private_ws.connections == 0


async def test_private_auth_failure_is_final() -> None:
    account = FakeAccount()
    account.private_ws.fail_auth = True
    with FakeBybit(plugins=account.plugins) as fake:
        ex = BybitExchange(settings_for(fake), FAST)
        with pytest.raises(AuthenticationError, match="Params Error"):
            await ex.start()
        await ex.close()
    assert account.private_ws.auth_results == [False]


async def test_rejected_subscription_is_a_clear_error() -> None:
    account = FakeAccount()
    with FakeBybit(plugins=account.plugins) as fake:
        fake.reject_topic("wallet")
        ex = BybitExchange(settings_for(fake), FAST)
        with pytest.raises(ExchangeError, match=r"subscription refused.*wallet"):
            await ex.start()
        await ex.close()


@pytest.mark.parametrize("fault", ["drop", "graceful", "down"])
async def test_socket_gap_reconnects_and_resyncs_missed_fills(fault: str) -> None:
    tape = real_tape(1500)
    async with bybit_on_fake(VenueConfig(latency_ms=0)) as (ex, account, fake):
        updates = Collector(ex.updates())
        account.trade(tape[:5])
        await ex.place_order(OrderRequest("gap-1", "BTCUSDT", Side.BUY, D("0.02")))
        await ex.place_order(
            OrderRequest("gap-2", "BTCUSDT", Side.SELL, D("0.5"), OrderType.LIMIT, D("9690"))
        )
        assert ex.stream is not None
        if fault == "down":
            fake.down(0.6)
        else:
            fake.drop(graceful=fault == "graceful")
        await wait_for(lambda: ex.stream is not None and not ex.stream.healthy)
        account.trade(tape[5:])  # fills happen while nobody listens
        assert account.private_ws.authenticated == 0
        await wait_for(lambda: ex.stream is not None and ex.stream.reconnects == 1, timeout=10)
        executions = account.matching.executions
        assert executions
        await wait_for(lambda: len(updates.fills) == len(executions))
        assert sorted(f.exec_id for f in updates.fills) == sorted(r["execId"] for r in executions)
        assert updates.orders("gap-1")[-1].status is OrderStatus.FILLED
        assert account.private_ws.auth_results == [True, True]
        subs = [f for f in account.private_ws.frames if f.get("op") == "subscribe"]
        assert sorted(a for f in subs for a in f["args"]) == sorted(
            ["order", "execution", "position", "wallet"] * 2
        )
        await updates.stop()


async def test_unanswered_pings_reconnect_and_resubscribe() -> None:
    quick_pings = FAST.model_copy(update={"ws_ping_interval_s": 2, "ws_ping_timeout_s": 1})
    async with bybit_on_fake(config=quick_pings) as (ex, account, fake):
        assert ex.stream is not None
        fake.answer_pings = False  # the socket looks open but the server is gone
        await wait_for(lambda: ex.stream is not None and not ex.stream.healthy, timeout=10)
        fake.answer_pings = True
        await wait_for(lambda: ex.stream is not None and ex.stream.reconnects == 1, timeout=10)
        assert account.private_ws.auth_results == [True, True]
        updates = Collector(ex.updates())
        tape = real_tape(300)
        account.trade(tape[:5])
        await ex.place_order(OrderRequest("after-ping", "BTCUSDT", Side.BUY, D("0.01")))
        account.trade(tape[5:])
        await wait_for(lambda: any(f.client_id == "after-ping" for f in updates.fills))
        await updates.stop()


async def test_cancel_that_times_out_after_it_landed_is_not_an_error() -> None:
    async with bybit_on_fake() as (ex, account, _fake):
        account.trade(real_tape(5))
        await ex.place_order(
            OrderRequest("c-slow", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, D("9000"))
        )
        account.rest.fail_next(10016, path="/v5/order/cancel")
        cancelled = await ex.cancel_order("BTCUSDT", "c-slow")
        assert cancelled.status is OrderStatus.CANCELLED
        codes = [r.ret_code for r in account.rest.received("/v5/order/cancel")]
        assert codes == [10016, 0]


async def test_create_during_downtime_is_retried_once_the_server_is_back() -> None:
    async with bybit_on_fake() as (ex, account, fake):
        account.trade(real_tape(5))
        fake.down(0.25)  # connections refused: the request never reached the exchange
        order = await ex.place_order(
            OrderRequest("down-1", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, D("9000"))
        )
        assert order.status is OrderStatus.NEW
        assert account.orders_created() == 1
        assert [r.ret_code for r in account.rest.received(CREATE)] == [0]


async def test_unknown_symbol_is_refused_before_any_order_is_sent() -> None:
    async with bybit_on_fake() as (ex, account, _fake):
        with pytest.raises(InvalidOrderError) as err:
            await ex.place_order(OrderRequest("nope", "NOPEUSDT", Side.BUY, D("1")))
        assert err.value.code == 10001
        assert account.rest.received(CREATE) == []
