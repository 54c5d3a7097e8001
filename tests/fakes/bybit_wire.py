"""Bybit v5 wire shapes used by the fake server (see shared/reference/bybit-v5.md §3)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from cryptoarena.data.records import Trade


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def num_text(value: float | str | Decimal) -> str:
    """Prices and sizes travel as plain decimal strings ("0.001", never "1e-03")."""
    if isinstance(value, str):
        return value
    return format(Decimal(repr(value)) if isinstance(value, float) else value, "f")


def envelope(result: Any = None, *, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    """The REST envelope (§3.1): always HTTP 200, a non-zero retCode means failure."""
    return {
        "retCode": code,
        "retMsg": msg,
        "result": {} if result is None else result,
        "retExtInfo": {},
        "time": now_ms(),
    }


def ack(
    channel: str, op: str, req_id: str, conn_id: str, *, ok: bool = True, msg: str = ""
) -> dict:
    """Subscribe/unsubscribe ack (§3.12): linear and spot differ in ``ret_msg``; echo req_id."""
    ret_msg = msg or (op if channel == "spot" and ok else "")
    return {"success": ok, "ret_msg": ret_msg, "conn_id": conn_id, "req_id": req_id, "op": op}


def public_pong(req_id: str, conn_id: str) -> dict[str, Any]:
    return {"success": True, "ret_msg": "pong", "conn_id": conn_id, "req_id": req_id, "op": "ping"}


def tick_direction(price: float, previous: float | None, last_dir: str) -> str:
    if previous is None or price == previous:
        return "ZeroPlusTick" if last_dir in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"
    return "PlusTick" if price > previous else "MinusTick"


def trade_item(
    trade: Trade | dict[str, Any], *, seq: int, symbol: str, channel: str, tick: str
) -> dict[str, Any]:
    """One element of a publicTrade ``data`` array (§3.13)."""
    if isinstance(trade, dict):
        return trade
    item: dict[str, Any] = {
        "T": trade.ts // 1_000_000,
        "s": symbol,
        "S": "Buy" if trade.side > 0 else "Sell",
        "v": num_text(trade.size),
        "p": num_text(trade.price),
        "i": trade.trade_id,
        "BT": False,
        "RPI": False,
        "seq": seq,
    }
    if channel != "spot":
        item["L"] = tick  # tick direction exists on perps/futures only
    return item


def public_trade_message(symbol: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": now_ms(), "data": items}


def recent_trade_row(item: dict[str, Any]) -> dict[str, Any]:
    """A publicTrade item as a GET /v5/market/recent-trade row (§3.9)."""
    return {
        "execId": item["i"],
        "symbol": item["s"],
        "price": item["p"],
        "size": item["v"],
        "side": item["S"],
        "time": str(item["T"]),
        "isBlockTrade": bool(item.get("BT", False)),
        "isRPITrade": bool(item.get("RPI", False)),
        "seq": str(item.get("seq", 0)),
    }
