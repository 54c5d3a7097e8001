"""The fake Bybit's v5 REST API: the endpoints the adapter uses, signed exactly as Bybit checks.

Signatures are verified on the raw query string / raw body bytes (reference §2.1): 10003 for an
unknown key, 10002 outside the recv window, 10004 for a bad signature. Every response carries the
real envelope and the ``X-Bapi-Limit*`` headers (both in :mod:`tests.fakes.bybit_rest_auth`).
Fault switches: :meth:`FakeRest.fail_next` (any retCode, 10006 with a future reset time),
:meth:`FakeRest.timeout_after_accept` (the order is created, the answer comes too late).
Everything received is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cryptoarena.trading.exchange.errors import ExchangeError
from cryptoarena.trading.exchange.instruments import prepare_order
from cryptoarena.trading.exchange.models import OrderRequest, OrderType, Side, TimeInForce

from tests.fakes.bybit_matching import FakeMatching, kline_rows
from tests.fakes.bybit_rest_auth import RateLimits, Recorded, check_signature
from tests.fakes.bybit_wire import envelope, now_ms

if TYPE_CHECKING:
    from tests.fakes.bybit_server import FakeBybit


@dataclass
class _Fault:
    code: int
    msg: str
    path: str | None
    times: int


class FakeRest:
    def __init__(self, keys: dict[str, str], matching: FakeMatching) -> None:
        self.keys = keys
        self.matching = matching
        self.requests: list[Recorded] = []
        self.faults: list[_Fault] = []
        self.accept_then_delay_s = 0.0  # switch: next create is accepted, answered this late
        self.reset_after_ms = 300
        self._limits = RateLimits()

    def plugin(self, app: web.Application, fake: FakeBybit) -> None:
        fake.state["rest"] = self
        routes = {
            ("GET", "/v5/market/time"): self._time,
            ("GET", "/v5/market/instruments-info"): self._instruments,
            ("GET", "/v5/market/kline"): self._kline,
            ("POST", "/v5/order/create"): self._create,
            ("POST", "/v5/order/cancel"): self._cancel,
            ("POST", "/v5/order/amend"): self._amend,
            ("GET", "/v5/order/realtime"): self._realtime,
            ("GET", "/v5/order/history"): self._realtime,  # the fake keeps every order
            ("GET", "/v5/position/list"): self._positions,
            ("GET", "/v5/account/wallet-balance"): self._wallet,
            ("GET", "/v5/execution/list"): self._executions,
        }
        for (method, path), handler in routes.items():
            app.router.add_route(method, path, self._wrap(path, handler))

    # -- switches -------------------------------------------------------------------------
    def fail_next(
        self, code: int, msg: str = "", *, path: str | None = None, times: int = 1
    ) -> None:
        default = {10006: "Too many visits!", 110007: "ab not enough for new order"}
        self.faults.append(_Fault(code, msg or default.get(code, "fake fault"), path, times))

    def timeout_after_accept(self, delay_s: float) -> None:
        self.accept_then_delay_s = delay_s

    def received(self, path: str, method: str | None = None) -> list[Recorded]:
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]

    # -- plumbing -------------------------------------------------------------------------
    def _wrap(self, path: str, handler: Any) -> Any:
        async def run(request: web.Request) -> web.Response:
            raw_body = await request.read()
            rec = Recorded(
                request.method,
                path,
                request.rel_url.raw_query_string,
                raw_body.decode(errors="replace"),
                dict(request.headers),
            )
            self.requests.append(rec)
            headers = self._limits.headers(path)
            result: dict[str, Any] | None = None
            code, msg = (
                check_signature(self.keys, request.headers, rec)
                if not path.startswith("/v5/market/")
                else (0, "OK")
            )
            if code == 0:
                code, msg = self._fault(path)
                if code == 10006:
                    headers["X-Bapi-Limit-Status"] = "0"
                    headers["X-Bapi-Limit-Reset-Timestamp"] = str(now_ms() + self.reset_after_ms)
            if code == 0:
                try:
                    result = await handler(request, rec)
                except ExchangeError as exc:
                    code, msg = exc.code or 10001, str(exc)
            body = envelope(result, code=code, msg=msg) if code else envelope(result)
            rec.ret_code, rec.response, rec.reply_headers = code, body, headers
            return web.json_response(body, headers=headers)

        return run

    def _fault(self, path: str) -> tuple[int, str]:
        for fault in self.faults:
            if fault.times > 0 and fault.path in (None, path):
                fault.times -= 1
                return fault.code, fault.msg
        return 0, "OK"

    @property
    def venue(self) -> Any:
        return self.matching.venue

    # -- market ---------------------------------------------------------------------------
    async def _time(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        ns = time.time_ns()
        return {"timeSecond": str(ns // 10**9), "timeNano": str(ns)}

    async def _instruments(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        q = request.query
        if q.get("category") != "linear":
            raise ExchangeError("params error: category", code=10001)
        rows = [
            self.matching.instrument_row(i)
            for s, i in self.venue.instruments.items()
            if q.get("symbol") in (None, s)
        ]
        return {"category": "linear", "list": rows, "nextPageCursor": ""}

    async def _kline(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        q = request.query
        symbol, interval = q.get("symbol", ""), q.get("interval", "1")
        if not interval.isdigit():
            raise ExchangeError("params error: interval (the fake serves minutes)", code=10001)
        limit = max(1, min(int(q.get("limit", 200)), 1000))
        rows = kline_rows(self.matching.tape, symbol, int(interval), limit)
        return {"category": "linear", "symbol": symbol, "list": rows}

    # -- trading --------------------------------------------------------------------------
    async def _create(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        body = rec.json()
        try:
            req = OrderRequest(
                client_id=str(body.get("orderLinkId") or uuid.uuid4()),
                symbol=str(body["symbol"]),
                side=Side(body["side"]),
                qty=Decimal(str(body["qty"])),
                order_type=OrderType(body["orderType"]),
                price=Decimal(str(body["price"])) if body.get("price") is not None else None,
                time_in_force=TimeInForce(body.get("timeInForce", "GTC")),
                reduce_only=bool(body.get("reduceOnly", False)),
            )
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise ExchangeError(f"params error: {exc}", code=10001) from None
        if body.get("category") != "linear" or body.get("positionIdx", 0) != 0:
            raise ExchangeError("position idx not match position mode", code=10001)
        if req.client_id in self.venue.orders:
            raise ExchangeError("OrderLinkedID is duplicate", code=110072)
        rounded = prepare_order(self.venue.instrument(req.symbol), req, None)
        if (rounded.qty, rounded.price) != (req.qty, req.price):
            raise ExchangeError("params error: qty or price is not on the step/tick", code=10001)
        order, _ = self.venue.submit(req, self.matching.clock.now_ns())
        self.matching.push("order", [self.matching.order_row(order)])
        self.matching.push("position", [self.matching.position_row(req.symbol, ws=True)])
        if self.accept_then_delay_s:
            delay, self.accept_then_delay_s = self.accept_then_delay_s, 0.0
            await asyncio.sleep(delay)
        return {"orderId": order.exchange_id, "orderLinkId": order.client_id}

    async def _cancel(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        body = rec.json()
        if not (body.get("orderId") or body.get("orderLinkId")):
            raise ExchangeError("params error: OrderId or orderLinkId is required", code=10001)
        order = self.venue.cancel(
            self.matching.clock.now_ns(),
            client_id=body.get("orderLinkId"),
            exchange_id=body.get("orderId"),
        )
        self.matching.push("order", [self.matching.order_row(order)])
        self.matching.push("position", [self.matching.position_row(order.symbol, ws=True)])
        return {"orderId": order.exchange_id, "orderLinkId": order.client_id}

    async def _amend(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        body = rec.json()
        if not (body.get("orderId") or body.get("orderLinkId")):
            raise ExchangeError("params error: OrderId or orderLinkId is required", code=10001)
        try:
            qty = Decimal(str(body["qty"])) if body.get("qty") is not None else None
            price = Decimal(str(body["price"])) if body.get("price") is not None else None
        except InvalidOperation as exc:
            raise ExchangeError(f"params error: {exc}", code=10001) from None
        sim = self.venue.find(client_id=body.get("orderLinkId"), exchange_id=body.get("orderId"))
        inst = self.venue.instrument(sim.request.symbol)
        if (qty is not None and inst.round_qty(qty) != qty) or (
            price is not None and inst.round_price(price) != price
        ):
            raise ExchangeError("params error: qty or price is not on the step/tick", code=10001)
        order = self.venue.amend(
            self.matching.clock.now_ns(),
            client_id=body.get("orderLinkId"),
            exchange_id=body.get("orderId"),
            qty=qty,
            price=price,
        )
        return {"orderId": order.exchange_id, "orderLinkId": order.client_id}

    async def _realtime(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        q = request.query
        symbol = q.get("symbol")
        if q.get("orderLinkId") or q.get("orderId"):
            found = [
                o.snapshot()
                for o in self.venue.orders.values()
                if o.request.client_id == q.get("orderLinkId", o.request.client_id)
                and o.exchange_id == q.get("orderId", o.exchange_id)
            ]
        else:
            closed = q.get("openOnly", "0") == "1"
            found = [
                o.snapshot()
                for o in reversed(list(self.venue.orders.values()))  # newest first
                if o.status.is_open != closed and symbol in (None, o.request.symbol)
            ]
        limit = max(1, min(int(q.get("limit", 20)), 50))
        start = int(q.get("cursor") or 0)
        page = found[start : start + limit]
        cursor = str(start + limit) if start + limit < len(found) else ""
        rows = [self.matching.order_row(o) for o in page]
        return {"list": rows, "nextPageCursor": cursor, "category": "linear"}

    async def _positions(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        q = request.query
        symbol = q.get("symbol")
        if symbol:
            self.venue.instrument(symbol)
            rows = [self.matching.position_row(symbol)]
        else:
            rows = [
                self.matching.position_row(s)
                for s, p in self.venue.account.positions.items()
                if p.qty != 0
            ]
        return {"list": rows, "nextPageCursor": "", "category": "linear"}

    async def _wallet(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        if request.query.get("accountType") != "UNIFIED":
            raise ExchangeError("accountType only support UNIFIED", code=10001)
        return {"list": [self.matching.wallet_account()]}

    async def _executions(self, request: web.Request, rec: Recorded) -> dict[str, Any]:
        q = request.query
        start = int(q.get("startTime", 0))
        rows = [
            r
            for r in self.matching.executions
            if r["symbol"] == q.get("symbol", r["symbol"]) and int(r["execTime"]) >= start
        ]
        limit = max(1, min(int(q.get("limit", 50)), 100))
        return {"list": list(reversed(rows))[:limit], "nextPageCursor": "", "category": "linear"}
