"""BybitExchange: the exchange protocol on Bybit v5 through pybit (demo, testnet or mainnet).

REST runs in a worker thread (:mod:`bybit_http`), the private socket under a supervisor
(:mod:`bybit_ws`). Every order carries its ``orderLinkId`` (the caller's client id): after an
ambiguous failure the order is looked up by that id before any retry, so a retry never
doubles an order. On start it reconciles open orders, positions and balance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from cryptoarena.clock import Clock, LiveClock
from cryptoarena.config import BybitSettings
from cryptoarena.retry import RetryPolicy
from cryptoarena.trading.exchange import bybit_codec as codec
from cryptoarena.trading.exchange.base import LIVE_VENUE
from cryptoarena.trading.exchange.bybit_config import BybitExchangeConfig
from cryptoarena.trading.exchange.bybit_http import BybitHttp, make_http
from cryptoarena.trading.exchange.bybit_tracker import OrderTracker
from cryptoarena.trading.exchange.bybit_ws import PrivateStream
from cryptoarena.trading.exchange.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    DuplicateOrderError,
    ExchangeError,
    InvalidOrderError,
    OrderNotFoundError,
    TemporaryExchangeError,
)
from cryptoarena.trading.exchange.instruments import PARAMS_ERROR, prepare_order
from cryptoarena.trading.exchange.models import (
    Balance,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
)

logger = logging.getLogger(__name__)


class BybitExchange:
    capabilities = LIVE_VENUE

    def __init__(
        self,
        settings: BybitSettings,
        config: BybitExchangeConfig | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        if settings.api_key is None or settings.api_secret is None:
            raise AuthenticationError(
                "Bybit needs ARENA_BYBIT__API_KEY and ARENA_BYBIT__API_SECRET in the environment"
            )
        self.settings = settings
        self.config = config or BybitExchangeConfig()
        self.name = f"bybit-{settings.env.value}"
        self.clock: Clock = clock or LiveClock()
        cfg = self.config
        key, secret = settings.api_key, settings.api_secret
        self.http = BybitHttp(
            lambda: make_http(
                settings.env,
                key.get_secret_value(),
                secret.get_secret_value(),
                rest_url=settings.rest_url,
                recv_window=settings.recv_window,
                timeout_s=cfg.timeout_s,
            ),
            policy=RetryPolicy(
                max_attempts=cfg.max_attempts,
                initial_s=cfg.backoff_base_s,
                max_s=max(cfg.backoff_base_s, cfg.backoff_max_s),
            ),
        )
        self.tracker = OrderTracker(self.config.category)
        self._orders = self.tracker.orders  # latest known state, by client id
        self.stream: PrivateStream | None = None
        if cfg.private_stream:
            self.stream = PrivateStream(
                env=settings.env,
                api_key=settings.api_key.get_secret_value(),
                api_secret=settings.api_secret.get_secret_value(),
                url=settings.ws_private_url,
                on_message=self.tracker.on_message,
                on_gap=self.resync,
                auth_expire_s=cfg.ws_auth_expire_s,
                ping_interval_s=cfg.ws_ping_interval_s,
                ping_timeout_s=cfg.ws_ping_timeout_s,
                check_interval_s=cfg.ws_check_interval_s,
                backoff_base_s=cfg.backoff_base_s,
                backoff_max_s=cfg.ws_backoff_max_s,
            )
        self._instruments: dict[str, Instrument] = {}
        self.clock_skew_s = 0.0

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the clock, load instruments, reconcile orders/positions/balance, open the socket."""
        server = await self.http.call("get_server_time")
        self.clock_skew_s = (int(server.get("timeNano", 0)) - time.time_ns()) / 1e9
        if abs(self.clock_skew_s) > self.config.max_clock_skew_s:
            logger.warning("local clock is %.2fs off Bybit's: signing may fail", self.clock_skew_s)
        for symbol in self.config.symbols:
            await self.instrument(symbol)
            for order in await self.open_orders(symbol):
                self._orders[order.client_id] = order
            pos = await self.position(symbol)
            logger.info(
                "%s reconciled %s: position %s @ %s", self.name, symbol, pos.qty, pos.avg_price
            )
        bal = await self.balance(self.config.coin)
        logger.info(
            "%s balance %s %s (available %s)", self.name, bal.wallet, bal.coin, bal.available
        )
        if self.stream is not None:
            await self.stream.start()

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()
        self.tracker.updates.close()

    # -- instruments ------------------------------------------------------------------------
    async def instrument(self, symbol: str) -> Instrument:
        if symbol not in self._instruments:
            result = await self.http.call(
                "get_instruments_info", category=self.config.category, symbol=symbol
            )
            rows = result.get("list") or []
            if not rows:
                raise InvalidOrderError(
                    f"params error: symbol invalid ({symbol!r} unknown to Bybit)", code=PARAMS_ERROR
                )
            self._instruments[symbol] = codec.parse_instrument(rows[0])
        return self._instruments[symbol]

    # -- orders -----------------------------------------------------------------------------
    async def place_order(self, request: OrderRequest) -> Order:
        known = self._orders.get(request.client_id)
        if known is not None:
            return known
        if self.stream is not None and self.stream.fatal is not None:
            # Without the private socket fills would go unseen: refuse to trade blind.
            raise self.stream.fatal
        req = prepare_order(await self.instrument(request.symbol), request, None)
        params = codec.order_params(req, self.config.category)
        created: dict[str, Any] | Order = {}
        try:
            async for attempt in self.http.attempts(f"order create {req.client_id}"):
                with attempt:
                    created = await self._create(req, params)
        except TemporaryExchangeError as err:
            raise AmbiguousOrderError(
                f"order {req.client_id}: {err}; not found by orderLinkId after "
                f"{self.http.policy.max_attempts} attempts",
                code=err.code,
            ) from err
        if isinstance(created, Order):
            return created
        result = created
        now = self.clock.now_ns()
        order = Order(
            client_id=req.client_id,
            exchange_id=str(result.get("orderId", "")),
            symbol=req.symbol,
            side=req.side,
            order_type=req.order_type,
            qty=req.qty,
            price=req.price,
            status=OrderStatus.NEW,
            filled_qty=codec.dec(0),
            avg_price=None,
            reduce_only=req.reduce_only,
            time_in_force=req.time_in_force,
            created_ns=now,
            updated_ns=now,
        )
        # The socket may already have told us more than the acknowledgement.
        known = self._orders.get(req.client_id)
        return known if known is not None else self.tracker.remember(order, exchange_time=False)

    async def _create(self, req: OrderRequest, params: dict[str, Any]) -> dict[str, Any] | Order:
        """One create: Bybit's ``result``, or the order when it turned out to exist already.

        A temporary error is re-raised (the policy re-sends the SAME orderLinkId) only after a
        lookup found nothing. A lookup that fails leaves the outcome unknown: that ends as
        :class:`AmbiguousOrderError` (the order may exist), never as a temporary error that a
        caller would retry as if nothing had been sent."""
        try:
            return await self.http.call_once("place_order", **params)
        except DuplicateOrderError as err:
            # The id was used before: the order exists (maybe from our own earlier attempt).
            try:
                found = await self.get_order(req.symbol, req.client_id)
            except ExchangeError as exc:
                raise self._ambiguous(req, err, exc) from exc
            if found is None:
                raise
            return self.tracker.remember(found)
        except TemporaryExchangeError as err:
            # The order may or may not exist now: ask by orderLinkId before trying again.
            try:
                found = await self.get_order(req.symbol, req.client_id)
            except TemporaryExchangeError as exc:
                logger.warning("lookup of %s failed too (%s)", req.client_id, exc)
                found = None  # re-sending the same orderLinkId is safe: Bybit rejects a double
            except ExchangeError as exc:
                raise self._ambiguous(req, err, exc) from exc
            if found is not None:
                logger.info("order %s exists after %s: not re-sent", req.client_id, err)
                return self.tracker.remember(found)
            raise

    @staticmethod
    def _ambiguous(
        req: OrderRequest, err: ExchangeError, lookup: ExchangeError
    ) -> AmbiguousOrderError:
        return AmbiguousOrderError(
            f"order {req.client_id}: {err}; the lookup by orderLinkId failed ({lookup}): "
            "it may exist",
            code=err.code,
        )

    async def _lookup_after_failure(self, symbol: str, client_id: str) -> Order | None:
        try:
            return await self.get_order(symbol, client_id)
        except TemporaryExchangeError as exc:
            logger.warning("lookup of %s failed too (%s)", client_id, exc)
            return None

    async def cancel_order(self, symbol: str, client_id: str) -> Order:
        async for attempt in self.http.attempts(f"cancel {client_id}"):
            with attempt:
                try:
                    await self.http.call_once(
                        "cancel_order",
                        category=self.config.category,
                        symbol=symbol,
                        orderLinkId=client_id,
                    )
                except TemporaryExchangeError:
                    # The cancel may have landed: if the order is no longer open, we are done.
                    found = await self._lookup_after_failure(symbol, client_id)
                    if found is not None and not found.status.is_open:
                        return self.tracker.remember(found)
                    raise
        order = await self.get_order(symbol, client_id)
        if order is None:
            raise ExchangeError(f"order {client_id} cancelled but not found afterwards")
        return self.tracker.remember(order)

    async def amend_order(
        self,
        symbol: str,
        client_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        """POST /v5/order/amend by orderLinkId (price/qty rounded to the instrument first).

        An amend is idempotent (same target terms), so a temporary failure is retried after
        checking the order is still open; 110001 (filled or cancelled meanwhile) is raised as
        :class:`OrderNotFoundError`. Returns the order as Bybit reports it afterwards."""
        inst = await self.instrument(symbol)
        if price is not None:
            price = inst.round_price(price)
        if qty is not None:
            qty = inst.round_qty(qty)
        params = codec.amend_params(
            symbol, client_id, qty=qty, price=price, category=self.config.category
        )
        async for attempt in self.http.attempts(f"amend {client_id}"):
            with attempt:
                try:
                    await self.http.call_once("amend_order", **params)
                except TemporaryExchangeError as err:
                    found = await self._lookup_after_failure(symbol, client_id)
                    if found is not None and not found.status.is_open:
                        raise OrderNotFoundError(
                            f"order {client_id} is {found.status.value}: too late to amend",
                            code=110001,
                        ) from err
                    raise
        order = await self.get_order(symbol, client_id)
        if order is None:
            raise ExchangeError(f"order {client_id} amended but not found afterwards")
        return self.tracker.remember(order)

    async def open_orders(self, symbol: str) -> list[Order]:
        orders: list[Order] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"category": self.config.category, "symbol": symbol}
            params.update({"openOnly": 0, "limit": 50})
            if cursor:
                params["cursor"] = cursor
            result = await self.http.call("get_open_orders", **params)
            orders += [codec.parse_order(row) for row in result.get("list") or []]
            cursor = result.get("nextPageCursor") or None
            if not cursor or not result.get("list"):
                return orders

    async def get_order(self, symbol: str, client_id: str) -> Order | None:
        # realtime answers open and recently closed orders; history covers older closed ones.
        for method in ("get_open_orders", "get_order_history"):
            result = await self.http.call(
                method, category=self.config.category, symbol=symbol, orderLinkId=client_id
            )
            rows = result.get("list") or []
            if rows:
                return codec.parse_order(rows[0])
        return None

    async def position(self, symbol: str) -> Position:
        result = await self.http.call("get_positions", category=self.config.category, symbol=symbol)
        rows = [r for r in result.get("list") or [] if r.get("positionIdx", 0) == 0]
        if not rows:
            return Position(symbol=symbol, qty=codec.dec(0), avg_price=codec.dec(0))
        return codec.parse_position(rows[0], symbol)

    async def balance(self, coin: str = "USDT") -> Balance:
        result = await self.http.call("get_wallet_balance", accountType="UNIFIED", coin=coin)
        accounts = result.get("list") or [{}]
        return codec.parse_balance(accounts[0], coin)

    def updates(self) -> AsyncIterator[Order | Fill]:
        return self.tracker.updates.subscribe()

    # -- pushes and re-sync -----------------------------------------------------------------
    async def resync(self, gap_start_ns: int) -> None:
        """After a socket gap: order states and fills we missed, from REST.

        Fills are asked for since the newest exchange event we saw (minus a margin), in
        exchange time, so a local clock that is off does not open a hole."""
        lookback_ms = int(self.config.resync_lookback_s * 1000)
        since_ms = self.tracker.last_event_ms - lookback_ms if self.tracker.last_event_ms else None
        for symbol in self.config.symbols:
            open_now = {o.client_id: o for o in await self.open_orders(symbol)}
            for order in open_now.values():
                self.tracker.remember(order)
            for cid, known in list(self._orders.items()):
                if known.symbol == symbol and known.status.is_open and cid not in open_now:
                    final = await self.get_order(symbol, cid)
                    if final is not None:
                        self.tracker.remember(final)
            result = await self.http.call(
                "get_executions",
                category=self.config.category,
                symbol=symbol,
                startTime=since_ms,  # None: Bybit's default window (the last 7 days)
                limit=100,
            )
            for row in sorted(result.get("list") or [], key=lambda r: int(r.get("execTime", 0))):
                fill = codec.parse_execution(row)
                if fill is not None:
                    self.tracker.fill(fill)
        logger.info("%s re-synced after the private socket gap", self.name)
