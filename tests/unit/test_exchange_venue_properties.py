"""Properties of the simulated venue under random order scripts on the real tape."""

from __future__ import annotations

from decimal import Decimal

from cryptoarena.trading.exchange.errors import ExchangeError
from cryptoarena.trading.exchange.models import OrderRequest, OrderType, Side, TimeInForce
from cryptoarena.trading.exchange.venue import Execution, SimVenue, VenueConfig, to_decimal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.tape import real_tape

D = Decimal
TAPE = real_tape(300, start=3000)

order_st = st.tuples(
    st.integers(min_value=0, max_value=len(TAPE) - 1),  # placed after this trade
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from([OrderType.MARKET, OrderType.LIMIT]),
    st.integers(min_value=1, max_value=3000),  # qty in steps of 0.001
    st.integers(min_value=-80, max_value=80),  # limit offset from the last price, in ticks
    st.sampled_from(list(TimeInForce)),
    st.booleans(),  # reduce only
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(order_st, min_size=1, max_size=12), st.sampled_from([0.0, 50.0, 500.0]))
def test_fills_never_exceed_orders_or_the_tape_and_books_balance(
    script: list[tuple[int, Side, OrderType, int, int, TimeInForce, bool]], latency: float
) -> None:
    cfg = VenueConfig(latency_ms=latency, initial_balance=D("50000"))
    venue = SimVenue(cfg)
    by_index: dict[int, list[OrderRequest]] = {}
    for n, (at, side, kind, steps, ticks, tif, reduce) in enumerate(script):
        last = to_decimal(TAPE[at].price)
        price = last + ticks * D("0.1") if kind is OrderType.LIMIT else None
        req = OrderRequest(f"o{n}", "BTCUSDT", side, steps * D("0.001"), kind, price, tif, reduce)
        by_index.setdefault(at, []).append(req)
    fills: list[Execution] = []
    for i, trade in enumerate(TAPE):
        events = venue.on_trades([trade])
        execs = [e for e in events if isinstance(e, Execution)]
        # One trade's size is never used twice.
        assert sum((e.fill.qty for e in execs), D(0)) <= to_decimal(trade.size)
        fills += execs
        for req in by_index.get(i, []):
            try:
                venue.submit(req, trade.ts)
            except ExchangeError as exc:
                assert exc.code is not None or "no trade seen" in str(exc)
    realised = D(0)
    for e in fills:
        f = e.fill
        rate = cfg.maker_fee if f.is_maker else cfg.taker_fee
        assert f.fee == f.price * f.qty * rate
        req = venue.orders[f.client_id].request
        if f.is_maker:
            assert f.price == req.price
        elif req.price is not None:
            assert f.price <= req.price if req.side is Side.BUY else f.price >= req.price
        realised += e.realised_pnl
    for order in venue.orders.values():
        assert D(0) <= order.filled_qty <= order.request.qty
        assert (order.status.value == "Filled") == (order.filled_qty == order.request.qty)
    signed = sum((f.fill.qty if f.fill.side is Side.BUY else -f.fill.qty for f in fills), D(0))
    assert venue.account.position_state("BTCUSDT").qty == signed
    fees = sum((f.fill.fee for f in fills), D(0))
    assert venue.account.wallet == cfg.initial_balance + realised - fees
