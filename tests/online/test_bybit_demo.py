"""Manual check against the REAL Bybit account in ARENA_BYBIT__* (demo by default).

Never runs in CI: marked ``online`` (deselected by default) and skipped without keys.

    ARENA_BYBIT__API_KEY=... ARENA_BYBIT__API_SECRET=... .venv/bin/pytest -m online tests/online -q
"""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import pytest
from cryptoarena.config import BybitEnv, BybitSettings
from cryptoarena.trading.exchange.bybit import BybitExchange, BybitExchangeConfig
from cryptoarena.trading.exchange.models import OrderRequest, OrderStatus, OrderType, Side
from pydantic import SecretStr

# Read at import: the suite's autouse fixture clears ARENA_* before each test.
KEY = os.environ.get("ARENA_BYBIT__API_KEY")
SECRET = os.environ.get("ARENA_BYBIT__API_SECRET")
ENV = BybitEnv(os.environ.get("ARENA_BYBIT__ENV", "demo"))

pytestmark = [
    pytest.mark.online,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not (KEY and SECRET), reason="ARENA_BYBIT__API_KEY/SECRET not set"),
]


async def test_place_and_cancel_a_far_limit_order_on_the_real_account() -> None:
    settings = BybitSettings(
        env=ENV, api_key=SecretStr(KEY or ""), api_secret=SecretStr(SECRET or "")
    )
    ex = BybitExchange(settings, BybitExchangeConfig(symbols=("BTCUSDT",)))
    await ex.start()
    try:
        ticker = await ex.http.call("get_tickers", category="linear", symbol="BTCUSDT")
        last = Decimal(ticker["list"][0]["lastPrice"])
        instrument = await ex.instrument("BTCUSDT")
        price = instrument.round_price(last * Decimal("0.5"))  # half the market: never fills
        qty = max(
            instrument.min_qty, instrument.round_qty(Decimal(10) / price) + instrument.qty_step
        )
        client_id = f"arena-online-{uuid.uuid4().hex[:12]}"
        order = await ex.place_order(
            OrderRequest(client_id, "BTCUSDT", Side.BUY, qty, OrderType.LIMIT, price)
        )
        assert order.exchange_id
        assert client_id in {o.client_id for o in await ex.open_orders("BTCUSDT")}
        cancelled = await ex.cancel_order("BTCUSDT", client_id)
        assert cancelled.status is OrderStatus.CANCELLED and cancelled.filled_qty == 0
        assert client_id not in {o.client_id for o in await ex.open_orders("BTCUSDT")}
    finally:
        await ex.close()
