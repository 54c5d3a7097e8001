"""Order records and rules: client ids, sizing a target into an order, in-flight state, and
the journal document of a fill."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptoarena.trading.exchange.errors import InvalidOrderError
from cryptoarena.trading.exchange.instruments import prepare_order
from cryptoarena.trading.exchange.models import (
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from cryptoarena.trading.portfolio.ledger import Ledger

# Bybit's linear taker and maker fees (and the paper venue's): used only to book fills we had
# to recover.
TAKER_FEE = Decimal("0.00055")
MAKER_FEE = Decimal("0.0002")


def run_tag(run_id: str) -> str:
    return hashlib.sha256(run_id.encode()).hexdigest()[:8]


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def incarnation_tag(now_ns: int) -> str:
    """Milliseconds of the process start, base 36 (8 chars until the year 5188)."""
    return _b36(now_ns // 1_000_000)


@dataclass
class InFlight:
    client_id: str
    strategy: str
    side: Side
    qty: Decimal
    sent_ns: int
    cancel_requested: bool = False
    # The exchange said the order is done with this much filled, but not all of its fills have
    # reached the book yet (REST answers can overtake the fill stream): still "in flight".
    final: Order | None = None


def size_order(
    book: Ledger, target: float, price: float, inst: Instrument, min_trade_fraction: Decimal
) -> tuple[Side, Decimal] | None:
    """The market order that moves ``book`` to ``target`` × equity at ``price``, or None when
    the change is below the instrument's minimum or ``min_trade_fraction`` of equity."""
    mark = Decimal(str(price))
    equity = book.equity(mark)
    if equity <= 0:
        return None
    delta = Decimal(str(target)) * equity / mark - book.qty
    if target == 0.0:
        delta = -book.qty  # close exactly, no dust left behind
    elif abs(delta) * mark < min_trade_fraction * equity:
        return None
    qty = inst.round_qty(abs(delta))
    if qty == 0 or qty < inst.min_qty or qty * mark < inst.min_notional:
        return None
    return (Side.BUY if delta > 0 else Side.SELL), qty


def unsendable(
    inst: Instrument,
    side: Side,
    qty: Decimal,
    *,
    limit: Decimal | None,
    mark: Decimal,
    reduce_only: bool,
) -> str | None:
    """Why the venue would refuse an order of ``qty`` (a limit at ``limit``, else a market order
    valued at ``mark``), or None. The venue's own checks (:func:`prepare_order`: lot, minimum
    quantity, minimum order value, which reduce-only orders are exempt from), so a residual
    that can never be accepted is dust, not an order refused again every bar."""
    kind = OrderType.MARKET if limit is None else OrderType.LIMIT
    probe = OrderRequest("dust-check", inst.symbol, side, qty, kind, limit, reduce_only=reduce_only)
    try:
        prepare_order(inst, probe, mark)
    except InvalidOrderError as exc:
        return str(exc)
    return None


def fill_doc(strategy: str, fill: Fill, realised: Decimal) -> dict[str, Any]:
    return {
        "exec_id": fill.exec_id,
        "client_id": fill.client_id,
        "exchange_id": fill.exchange_id,
        "strategy": strategy,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "price": str(fill.price),
        "qty": str(fill.qty),
        "fee": str(fill.fee),
        "is_maker": fill.is_maker,
        "realised": str(realised),
        "notional": float(fill.price * fill.qty),
        "ts_ns": fill.ts_ns,
    }


def order_update_doc(order: Order, strategy: str, now_ns: int) -> dict[str, Any]:
    return {
        "client_id": order.client_id,
        "exchange_id": order.exchange_id,
        "strategy": strategy,
        "status": order.status.value,
        "filled_qty": str(order.filled_qty),
        "avg_price": str(order.avg_price) if order.avg_price is not None else None,
        "reason": order.reject_reason,
        "ts_ns": order.updated_ns or now_ns,
    }


def recovered_fill(order: Order, missing: Decimal, now_ns: int) -> Fill:
    """A fill the exchange reports (in ``order.filled_qty``) that never reached us: at the
    order's average price with the taker fee (the maker fee for a PostOnly quote, which can
    only fill as a maker), ``exec_id`` ``recovered-…``."""
    assert order.avg_price is not None
    maker = order.time_in_force is TimeInForce.POST_ONLY
    fee = (missing * order.avg_price * (MAKER_FEE if maker else TAKER_FEE)).quantize(
        Decimal("0.00000001")
    )
    return Fill(
        exec_id=f"recovered-{order.client_id}-{order.filled_qty}",
        client_id=order.client_id,
        exchange_id=order.exchange_id,
        symbol=order.symbol,
        side=order.side,
        price=order.avg_price,
        qty=missing,
        fee=fee,
        is_maker=maker,
        ts_ns=order.updated_ns or now_ns,
    )


def order_doc(
    request: OrderRequest,
    strategy: str,
    ref_price: float,
    target: float,
    position_before: Decimal,
    decision_id: str | None,
    now_ns: int,
) -> dict[str, Any]:
    """The ``orders`` journal document, written before the order is sent: a market order
    (taker) or a PostOnly limit with its price (maker)."""
    return {
        "client_id": request.client_id,
        "strategy": strategy,
        "symbol": request.symbol,
        "side": request.side.value,
        "qty": str(request.qty),
        # Maker quotes are PostOnly limits at ``price``; taker orders are market orders.
        "order_type": request.order_type.value,
        "price": str(request.price) if request.price is not None else None,
        "time_in_force": request.time_in_force.value,
        "reduce_only": request.reduce_only,
        "ref_price": ref_price,
        "target": target,
        "position_before": str(position_before),
        "decision_id": decision_id,
        "ts_ns": now_ns,
    }
