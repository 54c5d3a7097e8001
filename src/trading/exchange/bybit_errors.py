"""The one boundary where Bybit's failures become the project's exchange errors.

pybit raises ``InvalidRequestError`` (a non-zero retCode, ``status_code`` = retCode),
``FailedRequestError`` (HTTP status not 200, or a body that is not JSON) and lets ``requests``
network errors through; :func:`translate` maps each to one :mod:`errors` class. Only
:class:`TemporaryExchangeError` is ever retried.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import requests
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
from pybit.exceptions import FailedRequestError, InvalidRequestError

# retCodes (reference §3.1).
TEMPORARY = {10000, 10002, 10006, 10016, 10429}
AUTHENTICATION = {10003, 10004, 10005, 10007, 10010, 33004}
INSUFFICIENT = {110004, 110007, 110012, 110044, 110045, 170131}
NOT_FOUND = {110001, 110008, 170213}
INVALID = {10001, 10029, 110003, 110094, 170136, 170137, 170140}
DUPLICATE = 110072
RATE_LIMITED = 10006
RATE_LIMIT_FALLBACK_S = 2.0
_ORIGIN = re.compile(r"origin_string\[.*?\]", re.DOTALL)


def _retry_after(code: int, headers: Mapping[str, str] | None) -> float:
    if code != RATE_LIMITED:
        return 0.0
    reset = (headers or {}).get("X-Bapi-Limit-Reset-Timestamp")
    try:
        # The reset time is in exchange ms; a reset in the past means "now".
        return max(0.0, int(str(reset)) / 1000 - time.time()) if reset else RATE_LIMIT_FALLBACK_S
    except ValueError:
        return RATE_LIMIT_FALLBACK_S


def redact(message: str) -> str:
    """Bybit's 10004 echoes the signed string, API key included: keep it out of errors and logs."""
    return _ORIGIN.sub("origin_string[redacted]", message)


def from_ret_code(
    code: int, message: str, headers: Mapping[str, str] | None = None
) -> ExchangeError:
    text = f"bybit {code}: {redact(message)}"
    if code in TEMPORARY:
        return TemporaryExchangeError(text, code=code, retry_after_s=_retry_after(code, headers))
    if code in AUTHENTICATION:
        return AuthenticationError(text, code=code)
    if code in INSUFFICIENT:
        return InsufficientBalanceError(text, code=code)
    if code in NOT_FOUND:
        return OrderNotFoundError(text, code=code)
    if code == DUPLICATE:
        return DuplicateOrderError(text, code=code)
    if code in INVALID:
        return InvalidOrderError(text, code=code)
    if 110000 <= code < 200000:
        return OrderRejectedError(text, code=code)
    return ExchangeError(text, code=code)


def translate(exc: BaseException) -> ExchangeError:
    """Map anything pybit or requests raised to the project's error (never loses the cause)."""
    if isinstance(exc, ExchangeError):
        return exc
    if isinstance(exc, InvalidRequestError):
        return from_ret_code(int(exc.status_code), str(exc.message), _headers(exc.resp_headers))
    if isinstance(exc, FailedRequestError):
        status = int(exc.status_code)
        text = f"bybit HTTP {status}: {exc.message}"
        if status == 403:
            # IP rate limit (Bybit asks to wait 10 minutes) or a US IP: retrying makes it worse.
            return ExchangeError(text + " (IP rate limit or blocked region)", code=status)
        if status in (408, 409, 429) or status >= 500:
            return TemporaryExchangeError(text, code=status, retry_after_s=1.0)
        if status == 401:
            return AuthenticationError(text, code=status)
        return ExchangeError(text, code=status)
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return TemporaryExchangeError(f"bybit network error: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, PermissionError):
        return AuthenticationError(f"bybit: {exc}")
    return ExchangeError(f"bybit: unexpected {exc.__class__.__name__}: {exc}")


def _headers(raw: Any) -> Mapping[str, str] | None:
    return raw if isinstance(raw, Mapping) else None
