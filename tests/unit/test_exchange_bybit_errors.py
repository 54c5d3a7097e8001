"""The one translation boundary: pybit/requests failures → the project's exchange errors."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests
from cryptoarena.trading.exchange import bybit_codec as codec
from cryptoarena.trading.exchange.bybit_errors import translate
from cryptoarena.trading.exchange.errors import (
    AuthenticationError,
    DuplicateOrderError,
    ExchangeError,
    InsufficientBalanceError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    TemporaryExchangeError,
)
from cryptoarena.trading.exchange.models import OrderRequest, OrderStatus, OrderType, Side
from pybit.exceptions import FailedRequestError, InvalidRequestError


def bybit_error(
    code: int, msg: str = "x", headers: dict[str, str] | None = None
) -> InvalidRequestError:
    return InvalidRequestError(
        request="POST /v5/order/create: {}",
        message=msg,
        status_code=code,
        time="00:00:00",
        resp_headers=headers or {},
    )


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (10000, TemporaryExchangeError),
        (10002, TemporaryExchangeError),
        (10006, TemporaryExchangeError),
        (10016, TemporaryExchangeError),
        (10003, AuthenticationError),
        (10004, AuthenticationError),
        (10010, AuthenticationError),
        (110007, InsufficientBalanceError),
        (110004, InsufficientBalanceError),
        (110001, OrderNotFoundError),
        (110072, DuplicateOrderError),
        (110094, InvalidOrderError),
        (10001, InvalidOrderError),
        (170136, InvalidOrderError),
        (110017, OrderRejectedError),
        (12345, ExchangeError),
    ],
)
def test_ret_codes_map_to_one_class_each(code: int, kind: type[ExchangeError]) -> None:
    err = translate(bybit_error(code))
    assert type(err) is kind and err.code == code and str(code) in str(err)


def test_rate_limit_waits_for_the_reset_header() -> None:
    reset = str(int(time.time() * 1000) + 1500)
    err = translate(bybit_error(10006, "Too many visits!", {"X-Bapi-Limit-Reset-Timestamp": reset}))
    assert isinstance(err, TemporaryExchangeError) and 1.0 < err.retry_after_s <= 1.5
    past = translate(bybit_error(10006, "", {"X-Bapi-Limit-Reset-Timestamp": "1"}))
    assert isinstance(past, TemporaryExchangeError) and past.retry_after_s == 0.0


def test_http_and_network_failures() -> None:
    def failed(status: int) -> FailedRequestError:
        return FailedRequestError(
            request="r", message="m", status_code=status, time="t", resp_headers=None
        )

    assert isinstance(translate(failed(502)), TemporaryExchangeError)
    assert isinstance(translate(failed(409)), TemporaryExchangeError)  # not JSON
    forbidden = translate(failed(403))
    assert type(forbidden) is ExchangeError and "IP rate limit" in str(forbidden)
    assert isinstance(translate(requests.ReadTimeout("slow")), TemporaryExchangeError)
    assert isinstance(translate(requests.ConnectionError("refused")), TemporaryExchangeError)


def test_signature_echo_is_redacted() -> None:
    err = translate(bybit_error(10004, "error sign! origin_string[1700000000000MYKEY5000{}]"))
    assert "MYKEY" not in str(err) and "redacted" in str(err)


def test_order_round_trip_through_the_wire_shape() -> None:
    req = OrderRequest(
        "c-1", "BTCUSDT", Side.SELL, Decimal("0.010"), OrderType.LIMIT, Decimal("65000.50")
    )
    params = codec.order_params(req)
    assert params == {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Sell",
        "orderType": "Limit",
        "qty": "0.01",
        "orderLinkId": "c-1",
        "positionIdx": 0,
        "price": "65000.5",
        "timeInForce": "GTC",
    }
    row = {  # the docs' example row (reference §3.5), trimmed
        "orderId": "fd4300ae",
        "orderLinkId": "c-1",
        "symbol": "BTCUSDT",
        "price": "65000.5",
        "qty": "0.01",
        "side": "Sell",
        "orderStatus": "PartiallyFilled",
        "avgPrice": "65000.5",
        "cumExecQty": "0.004",
        "timeInForce": "GTC",
        "orderType": "Limit",
        "reduceOnly": False,
        "createdTime": "1684738540559",
        "updatedTime": "1684738540561",
        "rejectReason": "EC_NoError",
    }
    order = codec.parse_order(row)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_qty == Decimal("0.004")
    assert order.created_ns == 1684738540559 * 1_000_000 and order.reject_reason == ""
    pos = codec.parse_position({"side": "Sell", "size": "0.5", "avgPrice": "100"}, "BTCUSDT")
    assert pos.qty == Decimal("-0.5")
    assert codec.parse_execution({"execType": "Funding"}) is None


def test_environments_map_to_bybits_hosts() -> None:
    from cryptoarena.config import BybitEnv
    from cryptoarena.trading.exchange.bybit_http import make_http

    assert make_http(BybitEnv.DEMO, "k", "s").endpoint == "https://api-demo.bybit.com"
    assert make_http(BybitEnv.TESTNET, "k", "s").endpoint == "https://api-testnet.bybit.com"
    assert make_http(BybitEnv.MAINNET, "k", "s").endpoint == "https://api.bybit.com"
    local = make_http(BybitEnv.DEMO, "k", "s", rest_url="http://127.0.0.1:9/")
    assert local.endpoint == "http://127.0.0.1:9" and local.demo
    assert local.retry_codes == {0} and local.max_retries == 1 and not local.log_requests
