"""Instrument rules and the order checks every exchange path shares (paper, Bybit, the fake).

The checks raise :class:`InvalidOrderError` with Bybit's own retCodes, so an order refused
locally looks exactly like one Bybit would refuse, and nothing is sent that cannot be valid.
"""

from __future__ import annotations

from decimal import Decimal

from cryptoarena.trading.exchange.errors import InvalidOrderError
from cryptoarena.trading.exchange.models import Instrument, OrderRequest, OrderType

# Bybit's BTCUSDT linear perpetual (instruments-info, 2025): the offline default.
BTCUSDT_LINEAR = Instrument(
    symbol="BTCUSDT",
    tick_size=Decimal("0.10"),
    qty_step=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    max_qty=Decimal("1190.000"),
    min_notional=Decimal("5"),
    base_coin="BTC",
    quote_coin="USDT",
)
ETHUSDT_LINEAR = Instrument(
    symbol="ETHUSDT",
    tick_size=Decimal("0.01"),
    qty_step=Decimal("0.01"),
    min_qty=Decimal("0.01"),
    max_qty=Decimal("7240.00"),
    min_notional=Decimal("5"),
    base_coin="ETH",
    quote_coin="USDT",
)
DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (BTCUSDT_LINEAR, ETHUSDT_LINEAR)

# Bybit retCodes used for refusals (reference §3.1).
PARAMS_ERROR = 10001
QTY_TRUNCATED_TO_ZERO = 110017
NOTIONAL_TOO_LOW = 110094


def find_instrument(instruments: dict[str, Instrument], symbol: str) -> Instrument:
    try:
        return instruments[symbol]
    except KeyError:
        raise InvalidOrderError(
            f"params error: symbol invalid ({symbol!r} is not a known instrument)",
            code=PARAMS_ERROR,
        ) from None


def prepare_order(
    instrument: Instrument, request: OrderRequest, ref_price: Decimal | None
) -> OrderRequest:
    """Round to the instrument's rules and refuse what can never be valid.

    ``ref_price`` prices a market order's notional (the last trade price); ``None`` skips the
    notional check for market orders. Raises :class:`InvalidOrderError` with Bybit's codes.
    """
    if request.symbol != instrument.symbol:
        raise InvalidOrderError(f"order for {request.symbol} checked against {instrument.symbol}")
    if not request.client_id or len(request.client_id) > 36:
        raise InvalidOrderError(
            "params error: orderLinkId must be 1-36 characters", code=PARAMS_ERROR
        )
    if not request.qty.is_finite() or request.qty <= 0:
        raise InvalidOrderError(f"params error: qty {request.qty} must be > 0", code=PARAMS_ERROR)
    price = request.price
    if request.order_type is OrderType.LIMIT:
        if price is None or not price.is_finite() or price <= 0:
            raise InvalidOrderError(
                "params error: a limit order needs a positive price", code=PARAMS_ERROR
            )
        price = instrument.round_price(price)
        if price <= 0:
            raise InvalidOrderError(
                f"params error: price {request.price} rounds to zero at tick "
                f"{instrument.tick_size}",
                code=PARAMS_ERROR,
            )
    elif price is not None:
        # Bybit ignores a market order's price; so do we, instead of guessing its meaning.
        price = None
    qty = instrument.round_qty(request.qty)
    if qty <= 0:
        raise InvalidOrderError(
            f"orderQty will be truncated to zero (qty {request.qty}, step {instrument.qty_step})",
            code=QTY_TRUNCATED_TO_ZERO,
        )
    if qty < instrument.min_qty:
        raise InvalidOrderError(
            f"The number of contracts exceeds minimum limit allowed (qty {qty} < "
            f"minOrderQty {instrument.min_qty})",
            code=PARAMS_ERROR,
        )
    if qty > instrument.max_qty:
        raise InvalidOrderError(
            f"The number of contracts exceeds maximum limit allowed (qty {qty} > "
            f"maxOrderQty {instrument.max_qty})",
            code=PARAMS_ERROR,
        )
    value_price = price if price is not None else ref_price
    # Reduce-only orders close risk, and Bybit lets them under the minimum notional.
    if value_price is not None and not request.reduce_only:
        value = qty * value_price
        if value < instrument.min_notional:
            raise InvalidOrderError(
                f"Order value {value.normalize():f} is below the minimum "
                f"{instrument.min_notional} USDT (minNotionalValue)",
                code=NOTIONAL_TOO_LOW,
            )
    # Built directly: ``dataclasses.replace`` reads the fields anew on every order.
    return OrderRequest(
        request.client_id, request.symbol, request.side, qty, request.order_type, price,
        request.time_in_force, request.reduce_only,
    )  # fmt: skip
