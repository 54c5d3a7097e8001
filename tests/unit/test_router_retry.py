"""The order router retries a temporary create error under the project's one retry policy:
the same client id on every attempt, exponential jittered delays honouring the venue's
retry-after, and a journaled rejection once the attempts run out (it backed off linearly)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from cryptoarena.clock import SimClock
from cryptoarena.trading.exchange.base import LIVE_VENUE
from cryptoarena.trading.exchange.errors import TemporaryExchangeError
from cryptoarena.trading.exchange.instruments import BTCUSDT_LINEAR
from cryptoarena.trading.exchange.models import OrderRequest, OrderType, Side
from cryptoarena.trading.execution.router import SEND_POLICY, OrderRouter
from cryptoarena.trading.execution.tracking import OrderLedger
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.risk.limits import RiskConfig
from cryptoarena.trading.risk.manager import RiskManager


class FlakyVenue:
    """place_order fails with the given errors, then raises them all again (never succeeds)."""

    capabilities = LIVE_VENUE

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.seen: list[str] = []

    async def place_order(self, request: OrderRequest) -> Any:
        self.seen.append(request.client_id)
        raise self.errors[min(len(self.seen), len(self.errors)) - 1]


def _router(venue: FlakyVenue, records: list[tuple[str, dict[str, Any]]]) -> OrderRouter:
    clock = SimClock(0)
    books = {"sma": Ledger("sma", capital=Decimal(10_000))}

    def record(kind: str, doc: dict[str, Any]) -> None:
        records.append((kind, doc))

    ledger = OrderLedger(books=books, record=record, clock=clock, run_id="r", incarnation="i")
    risk = RiskManager(RiskConfig(), {"sma": 10_000.0}, lambda *a, **k: None)
    return OrderRouter(
        exchange=venue,  # type: ignore[arg-type]
        instrument=BTCUSDT_LINEAR,
        ledger=ledger,
        risk=risk,
        record=record,
        clock=clock,
        min_trade_fraction=0.01,
        order_timeout_s=10.0,
        inline=True,
    )


def test_temporary_create_errors_are_retried_under_the_policy_then_rejected() -> None:
    venue = FlakyVenue(
        TemporaryExchangeError("busy", code=10016),
        TemporaryExchangeError("rate limit", code=10006, retry_after_s=0.75),
        TemporaryExchangeError("busy", code=10016),
        TemporaryExchangeError("busy", code=10016),
    )
    records: list[tuple[str, dict[str, Any]]] = []
    router = _router(venue, records)
    delays: list[float] = []

    async def sleep(s: float) -> None:
        delays.append(s)

    router.sleep = sleep
    request = OrderRequest(
        symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.01"), order_type=OrderType.MARKET,
        client_id="r-00-i-1",
    )  # fmt: skip
    asyncio.run(router._send(request))
    assert venue.seen == ["r-00-i-1"] * SEND_POLICY.max_attempts  # type: ignore[operator]
    assert len(delays) == SEND_POLICY.max_attempts - 1  # type: ignore[operator]
    assert delays[1] >= 0.75  # the venue's retry-after is honoured
    assert all(0 <= d <= max(SEND_POLICY.max_s, 0.75) for d in delays)
    # Exponential, not linear: the cap of the third delay is 4× the first one's.
    assert SEND_POLICY.backoff_s(3) == 4 * SEND_POLICY.backoff_s(1)
    rejected = [d for kind, d in records if kind == "order_updates"]
    assert rejected and rejected[-1]["status"] == "Rejected"
    assert "gave up" in rejected[-1]["reason"]


def test_a_recovered_fill_of_a_post_only_quote_pays_the_maker_fee() -> None:
    """Fills the exchange reports but that never reached us are booked from the order: a
    PostOnly quote can only have filled as a maker (0.02 %), a market order as a taker."""
    from cryptoarena.trading.exchange.models import Order, OrderStatus, TimeInForce
    from cryptoarena.trading.execution.orders import recovered_fill

    def order(order_type: OrderType, tif: TimeInForce) -> Order:
        return Order(client_id="r-00-i-1", exchange_id="x", symbol="BTCUSDT", side=Side.BUY,
                     order_type=order_type, qty=Decimal("0.5"), price=Decimal("10000"),
                     status=OrderStatus.FILLED, filled_qty=Decimal("0.5"),
                     avg_price=Decimal("10000"), reduce_only=False, time_in_force=tif,
                     created_ns=1, updated_ns=2)  # fmt: skip

    maker = recovered_fill(order(OrderType.LIMIT, TimeInForce.POST_ONLY), Decimal("0.5"), 3)
    assert maker.is_maker and maker.fee == Decimal("1.00000000")  # 5,000 × 0.02 %
    taker = recovered_fill(order(OrderType.MARKET, TimeInForce.GTC), Decimal("0.5"), 3)
    assert not taker.is_maker and taker.fee == Decimal("2.75000000")  # 5,000 × 0.055 %
