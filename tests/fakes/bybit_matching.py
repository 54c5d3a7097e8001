"""The fake Bybit's account: the same simulated venue as the paper exchange, in Bybit's wire shapes.

Orders sent to the fake REST API are matched against the tape given to :meth:`FakeMatching.trade`
by :class:`cryptoarena.trading.exchange.venue.SimVenue`, the engine behind PaperExchange, so the
same scripted orders get the same fills and fees on both. Each fill is pushed on the private
socket as Bybit does it: order → execution → position → wallet.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cryptoarena.clock import Clock, SimClock
from cryptoarena.data.records import Trade
from cryptoarena.trading.exchange.bybit_codec import text
from cryptoarena.trading.exchange.models import Instrument, Order, OrderType
from cryptoarena.trading.exchange.venue import Execution, SimVenue, VenueConfig

from tests.fakes.bybit_wire import now_ms

if TYPE_CHECKING:
    from tests.fakes.bybit_server import FakeBybit

MS = 1_000_000


def kline_rows(tape: Sequence[Trade], symbol: str, minutes: int, limit: int) -> list[list[str]]:
    """GET /v5/market/kline rows from the tape: 7 strings each, newest first (§3.8)."""
    span = minutes * 60_000
    bars: dict[int, list[float]] = {}
    for t in tape:
        if t.symbol != symbol:
            continue
        start = (t.ts // MS) // span * span
        bar = bars.setdefault(start, [t.price, t.price, t.price, t.price, 0.0, 0.0])
        bar[1], bar[2], bar[3] = max(bar[1], t.price), min(bar[2], t.price), t.price
        bar[4] += t.size
        bar[5] += t.size * t.price
    return [
        [str(s), *(repr(v) for v in bar[:4]), f"{bar[4]:.3f}", f"{bar[5]:.4f}"]
        for s, bar in sorted(bars.items(), reverse=True)
    ][:limit]


def _t(value: Decimal | None) -> str:
    return text(value) if value is not None else "0"


class FakeMatching:
    def __init__(self, config: VenueConfig | None = None, *, clock: Clock | None = None) -> None:
        self.venue = SimVenue(config or VenueConfig(), name="fake-bybit")
        # Exchange time is the tape's time unless a clock is injected (it is advanced anyway
        # when it is a SimClock): an order placed now meets the trades that come after it.
        self.clock: Clock = clock or SimClock(0)
        self.executions: list[dict[str, Any]] = []
        self.tape: list[Trade] = []
        self.fake: FakeBybit | None = None
        # Several accounts on one server: private pushes go only to sockets of these keys.
        self.keys: Collection[str] | None = None
        self._seq = itertools.count(1)

    def plugin(self, app: web.Application, fake: FakeBybit) -> None:
        self.fake = fake
        fake.state["matching"] = self

    # -- the tape -------------------------------------------------------------------------
    def trade(self, trades: Sequence[Trade]) -> None:
        """Trades happen: public pushes (base server), then matching and private pushes."""
        assert self.fake is not None, "install the plugin first"
        by_symbol: dict[str, list[Trade]] = {}
        for t in trades:
            by_symbol.setdefault(t.symbol, []).append(t)
        for symbol, batch in by_symbol.items():
            self.fake.push_trades(symbol, batch)
        self.fake.call(lambda: self._match(trades))

    def _match(self, trades: Sequence[Trade]) -> None:
        self.tape.extend(trades)
        if isinstance(self.clock, SimClock) and trades:
            self.clock.advance_to(max(t.ts for t in trades))
        for event in self.venue.on_trades(trades):
            if isinstance(event, Execution):
                row = self.execution_row(event)
                self.executions.append(row)
                self.push("order", [self.order_row(event.order)])
                self.push("execution", [row])
                self.push("position", [self.position_row(event.order.symbol, ws=True)])
                self.push("wallet", [self.wallet_account()])
            else:
                self.push("order", [self.order_row(event)])

    def push(self, topic: str, data: list[dict[str, Any]]) -> None:
        """Queue a private push (runs on the server loop, keeps order per connection)."""
        if self.fake is None:
            return
        ws = self.fake.state.get("private_ws")
        if ws is not None:
            ws.push(
                {
                    "id": f"{next(self._seq)}-{topic}",
                    "topic": topic,
                    "creationTime": now_ms(),
                    "data": data,
                },
                self.keys,
            )

    # -- wire shapes ----------------------------------------------------------------------
    def order_row(self, order: Order) -> dict[str, Any]:
        sim = self.venue.orders[order.client_id]
        leaves = order.qty - order.filled_qty if order.status.is_open else Decimal(0)
        price = order.price if order.order_type is OrderType.LIMIT else None
        return {
            "orderId": order.exchange_id,
            "orderLinkId": order.client_id,
            "blockTradeId": "",
            "symbol": order.symbol,
            "price": _t(price),
            "qty": text(order.qty),
            "side": order.side.value,
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": order.status.value,
            "cancelType": sim.cancel_type,
            "rejectReason": sim.reject_reason,
            "avgPrice": _t(order.avg_price),
            "leavesQty": text(leaves),
            "leavesValue": text(leaves * (price or Decimal(0))),
            "cumExecQty": text(order.filled_qty),
            "cumExecValue": text(sim.cum_value),
            "cumExecFee": text(sim.cum_fee),
            "timeInForce": "IOC"
            if order.order_type is OrderType.MARKET
            else order.time_in_force.value,
            "orderType": order.order_type.value,
            "stopOrderType": "",
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "triggerDirection": 0,
            "reduceOnly": order.reduce_only,
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "tpslMode": "",
            "createdTime": str(order.created_ns // MS),
            "updatedTime": str(order.updated_ns // MS),
            "category": "linear",
        }

    def execution_row(self, ex: Execution) -> dict[str, Any]:
        f, order = ex.fill, ex.order
        return {
            "category": "linear",
            "symbol": f.symbol,
            "closedSize": text(ex.closed_qty),
            "execFee": text(f.fee),
            "execId": f.exec_id,
            "execPrice": text(f.price),
            "execQty": text(f.qty),
            "execType": "Trade",
            "execValue": text(f.price * f.qty),
            "feeRate": text(ex.fee_rate),
            "markPrice": text(f.price),
            "leavesQty": text(order.qty - order.filled_qty),
            "orderId": f.exchange_id,
            "orderLinkId": f.client_id,
            "orderPrice": _t(order.price),
            "orderQty": text(order.qty),
            "orderType": order.order_type.value,
            "stopOrderType": "UNKNOWN",
            "side": f.side.value,
            "execTime": str(f.ts_ns // MS),
            "isLeverage": "0",
            "isMaker": f.is_maker,
            "seq": next(self._seq),
            "execPnl": text(ex.realised_pnl),
            "createType": "CreateByUser",
            "feeCurrency": "USDT",
        }

    def position_row(self, symbol: str, *, ws: bool = False) -> dict[str, Any]:
        state = self.venue.account.position_state(symbol)
        mark = self.venue.last_price.get(symbol, Decimal(0))
        row: dict[str, Any] = {
            "positionIdx": 0,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": symbol,
            "side": "" if state.qty == 0 else ("Buy" if state.qty > 0 else "Sell"),
            "size": text(abs(state.qty)),
            "positionValue": text(abs(state.qty) * state.avg_price),
            "tradeMode": 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "leverage": text(self.venue.config.leverage),
            "markPrice": text(mark),
            "liqPrice": "",
            "unrealisedPnl": text(state.unrealised(mark or None)),
            "curRealisedPnl": text(state.realised_pnl),
            "cumRealisedPnl": text(state.realised_pnl),
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
            "tpslMode": "Full",
            "isReduceOnly": False,
            "createdTime": "0",
            "updatedTime": str(now_ms()),
            "seq": next(self._seq),
            "category": "linear",
        }
        row["entryPrice" if ws else "avgPrice"] = text(state.avg_price)
        return row

    def wallet_account(self) -> dict[str, Any]:
        acct = self.venue.account
        upl = acct.unrealised()
        equity = acct.wallet + upl
        order_im = self.venue.order_margin()
        return {
            "accountType": "UNIFIED",
            "totalEquity": text(equity),
            "totalWalletBalance": text(acct.wallet),
            "totalMarginBalance": text(equity),
            "totalAvailableBalance": text(acct.available(order_im)),
            "totalPerpUPL": text(upl),
            "totalInitialMargin": text(acct.position_margin() + order_im),
            "totalMaintenanceMargin": "0",
            "accountIMRate": "0",
            "accountMMRate": "0",
            "accountLTV": "0",
            "coin": [
                {
                    "coin": acct.coin,
                    "equity": text(equity),
                    "usdValue": text(equity),
                    "walletBalance": text(acct.wallet),
                    "locked": "0",
                    "totalOrderIM": text(order_im),
                    "totalPositionIM": text(acct.position_margin()),
                    "totalPositionMM": "0",
                    "unrealisedPnl": text(upl),
                    "cumRealisedPnl": text(
                        sum((p.realised_pnl for p in acct.positions.values()), Decimal(0))
                    ),
                    "bonus": "0",
                    "borrowAmount": "0",
                    "accruedInterest": "0",
                    "collateralSwitch": True,
                    "marginCollateral": True,
                    "spotBorrow": "0",
                }
            ],
        }

    @staticmethod
    def instrument_row(i: Instrument) -> dict[str, Any]:
        return {
            "symbol": i.symbol,
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": i.base_coin,
            "quoteCoin": i.quote_coin,
            "settleCoin": i.quote_coin,
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "priceScale": str(max(0, -i.tick_size.normalize().as_tuple().exponent)),  # type: ignore[operator]
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {
                "minPrice": text(i.tick_size),
                "maxPrice": "1999999.80",
                "tickSize": text(i.tick_size),
            },
            "lotSizeFilter": {
                "maxOrderQty": text(i.max_qty),
                "minOrderQty": text(i.min_qty),
                "qtyStep": text(i.qty_step),
                "postOnlyMaxOrderQty": text(i.max_qty),
                "maxMktOrderQty": text(i.max_qty),
                "minNotionalValue": text(i.min_notional),
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "copyTrading": "both",
            "isPreListing": False,
            "preListingInfo": None,
        }
