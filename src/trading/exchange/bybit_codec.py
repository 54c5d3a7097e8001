"""Bybit v5 wire records ↔ the exchange contract's records (reference §3)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cryptoarena.trading.exchange.models import (
    Balance,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

MS = 1_000_000
_STATUS = {s.value: s for s in OrderStatus}
# Statuses our contract does not model, folded into the nearest one.
_STATUS.update(
    {
        "Untriggered": OrderStatus.NEW,
        "Triggered": OrderStatus.NEW,
        "Deactivated": OrderStatus.CANCELLED,
    }
)


def dec(value: Any, default: str = "0") -> Decimal:
    text = str(value) if value not in (None, "") else default
    return Decimal(text)


def text(value: Decimal) -> str:
    """Decimal as Bybit writes numbers: plain notation, no exponent, no trailing zeros."""
    out = format(value.normalize(), "f")
    return out if out != "-0" else "0"


def ms_to_ns(value: Any) -> int:
    return int(value or 0) * MS


def order_params(request: OrderRequest, category: str = "linear") -> dict[str, Any]:
    """Keyword arguments for pybit's ``place_order`` (POST /v5/order/create)."""
    params: dict[str, Any] = {
        "category": category,
        "symbol": request.symbol,
        "side": request.side.value,
        "orderType": request.order_type.value,
        "qty": text(request.qty),
        "orderLinkId": request.client_id,
        "positionIdx": 0,  # one-way mode
    }
    if request.order_type is OrderType.LIMIT:
        assert request.price is not None
        params["price"] = text(request.price)
        params["timeInForce"] = request.time_in_force.value
    if request.reduce_only:
        params["reduceOnly"] = True
    return params


def amend_params(
    symbol: str,
    client_id: str,
    *,
    qty: Decimal | None = None,
    price: Decimal | None = None,
    category: str = "linear",
) -> dict[str, Any]:
    """Keyword arguments for pybit's ``amend_order`` (POST /v5/order/amend): only what changes."""
    params: dict[str, Any] = {"category": category, "symbol": symbol, "orderLinkId": client_id}
    if qty is not None:
        params["qty"] = text(qty)
    if price is not None:
        params["price"] = text(price)
    return params


def parse_order(row: dict[str, Any]) -> Order:
    """One order from /v5/order/realtime or the ``order`` topic."""
    order_type = OrderType(row["orderType"])
    filled = dec(row.get("cumExecQty"))
    avg = dec(row.get("avgPrice")) if filled else None
    price = dec(row.get("price")) if order_type is OrderType.LIMIT else None
    reason = str(row.get("rejectReason") or "")
    tif = str(row.get("timeInForce") or "GTC")
    return Order(
        client_id=str(row.get("orderLinkId") or ""),
        exchange_id=str(row["orderId"]),
        symbol=str(row["symbol"]),
        side=Side(row["side"]),
        order_type=order_type,
        qty=dec(row["qty"]),
        price=price,
        status=_STATUS.get(str(row["orderStatus"]), OrderStatus.REJECTED),
        filled_qty=filled,
        avg_price=avg,
        reduce_only=bool(row.get("reduceOnly", False)),
        time_in_force=TimeInForce(tif)
        if tif in TimeInForce._value2member_map_
        else TimeInForce.GTC,
        created_ns=ms_to_ns(row.get("createdTime")),
        updated_ns=ms_to_ns(row.get("updatedTime")),
        reject_reason="" if reason in ("", "EC_NoError") else reason,
    )


def parse_execution(row: dict[str, Any]) -> Fill | None:
    """One fill from the ``execution`` topic (or /v5/execution/list); None for funding etc."""
    if row.get("execType", "Trade") != "Trade":
        return None
    return Fill(
        exec_id=str(row["execId"]),
        client_id=str(row.get("orderLinkId") or ""),
        exchange_id=str(row["orderId"]),
        symbol=str(row["symbol"]),
        side=Side(row["side"]),
        price=dec(row["execPrice"]),
        qty=dec(row["execQty"]),
        fee=dec(row.get("execFee")),
        is_maker=bool(row.get("isMaker", False)),
        ts_ns=ms_to_ns(row.get("execTime")),
    )


def parse_position(row: dict[str, Any], symbol: str) -> Position:
    """A /v5/position/list row (``avgPrice``) or a ``position`` push (``entryPrice``)."""
    size = dec(row.get("size"))
    side = row.get("side", "")
    qty = -size if side == "Sell" else size
    avg = dec(row.get("avgPrice", row.get("entryPrice")))
    return Position(
        symbol=symbol, qty=qty, avg_price=avg, unrealised_pnl=dec(row.get("unrealisedPnl"))
    )


def parse_balance(account: dict[str, Any], coin: str) -> Balance:
    """Wallet for ``coin`` from one /v5/account/wallet-balance (or ``wallet`` push) account."""
    for row in account.get("coin") or []:
        if row.get("coin") == coin:
            wallet = dec(row.get("walletBalance"))
            # UTA cross margin: "available" is the account's totalAvailableBalance (USD ≈ USDT).
            available = dec(account.get("totalAvailableBalance"), default=str(wallet))
            return Balance(coin=coin, wallet=wallet, available=available)
    return Balance(coin=coin, wallet=Decimal(0), available=Decimal(0))


def parse_instrument(row: dict[str, Any]) -> Instrument:
    """A linear row of /v5/market/instruments-info."""
    lot = row["lotSizeFilter"]
    return Instrument(
        symbol=str(row["symbol"]),
        tick_size=dec(row["priceFilter"]["tickSize"]),
        qty_step=dec(lot.get("qtyStep") or lot.get("basePrecision")),
        min_qty=dec(lot["minOrderQty"]),
        max_qty=dec(lot["maxOrderQty"]),
        min_notional=dec(lot.get("minNotionalValue") or lot.get("minOrderAmt")),
        base_coin=str(row.get("baseCoin", "")),
        quote_coin=str(row.get("quoteCoin", "")),
    )
