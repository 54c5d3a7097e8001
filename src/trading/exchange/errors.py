"""The project's own exchange errors. Adapters translate exchange codes into these at one
boundary; only :class:`TemporaryExchangeError` is ever retried."""

from __future__ import annotations


class ExchangeError(Exception):
    """Base class; ``code`` is the exchange's retCode when there is one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryExchangeError(ExchangeError):
    """Timeouts, rate limits, exchange busy: safe to retry after backoff."""

    def __init__(self, message: str, *, code: int | None = None, retry_after_s: float = 0.0):
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class AuthenticationError(ExchangeError):
    """Bad key, bad signature, expired timestamp beyond repair: never retried."""


class InvalidOrderError(ExchangeError):
    """The order can never be valid (off tick, below minimum, unknown symbol)."""


class OrderRejectedError(ExchangeError):
    """The exchange refused a valid order (insufficient balance, reduce-only violated...)."""


class InsufficientBalanceError(OrderRejectedError):
    pass


class OrderNotFoundError(ExchangeError):
    pass


class AmbiguousOrderError(ExchangeError):
    """The outcome of a request is unknown (timeout after send): ask by client id first."""


class DuplicateOrderError(OrderRejectedError):
    """The client id was used before (Bybit 110072): the order exists; look it up."""
