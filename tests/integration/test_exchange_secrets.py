"""An authenticated session logs nothing secret, even at DEBUG with pybit/urllib3/websocket on."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from cryptoarena.trading.exchange.errors import AuthenticationError
from cryptoarena.trading.exchange.models import OrderRequest, OrderType, Side

from tests.fakes.bybit_account import TEST_KEY, TEST_SECRET
from tests.fakes.tape import real_tape
from tests.integration.bybit_harness import bybit_on_fake, wait_for

pytestmark = pytest.mark.timeout(60)
LOGGERS = (
    "",
    "pybit",
    "pybit._http_manager",
    "pybit._websocket_stream",
    "urllib3",
    "websocket",
    "cryptoarena",
)


async def test_key_and_secret_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    async with bybit_on_fake() as (ex, account, fake):
        account.trade(real_tape(50))
        await ex.place_order(
            OrderRequest(
                "sec-1", "BTCUSDT", Side.BUY, Decimal("0.01"), OrderType.LIMIT, Decimal("9000")
            )
        )
        await ex.cancel_order("BTCUSDT", "sec-1")
        await ex.position("BTCUSDT")
        fake.drop()  # a reconnect re-authenticates: also silent about the keys
        stream = ex.stream
        assert stream is not None
        await wait_for(lambda: stream.reconnects >= 1, timeout=30)
        account.rest.fail_next(10004, path="/v5/order/create")
        with pytest.raises(AuthenticationError) as err:
            await ex.place_order(OrderRequest("sec-2", "BTCUSDT", Side.BUY, Decimal("0.01")))
    text = caplog.text + str(err.value) + repr(ex.settings)
    assert len(caplog.records) > 10 and "urllib3" in {r.name.split(".")[0] for r in caplog.records}
    assert TEST_SECRET not in text
    assert TEST_KEY not in text
