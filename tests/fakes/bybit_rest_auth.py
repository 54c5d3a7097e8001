"""The fake Bybit REST front door: the record of each request, the signature check exactly as
Bybit does it (reference §2.1) and the ``X-Bapi-Limit*`` rate-limit headers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.bybit_wire import now_ms

LIMITS = {"/v5/order/create": 10, "/v5/order/cancel": 10}
DEFAULT_LIMIT = 50


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    body: str
    headers: dict[str, str]
    ret_code: int = -1
    response: dict[str, Any] = field(default_factory=dict)
    reply_headers: dict[str, str] = field(default_factory=dict)
    at_ms: int = field(default_factory=now_ms)

    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}


def check_signature(
    keys: Mapping[str, str], headers: Mapping[str, str], rec: Recorded
) -> tuple[int, str]:
    """(retCode, retMsg) for the request's auth headers: 10003 for an unknown key, 10002 outside
    the recv window, 10004 for a bad signature (over the raw query string or raw body)."""
    h = headers  # the request's own (case-insensitive) headers
    key, ts, rw, sig = (
        h.get("X-BAPI-API-KEY", ""),
        h.get("X-BAPI-TIMESTAMP", "0"),
        h.get("X-BAPI-RECV-WINDOW", "5000"),
        h.get("X-BAPI-SIGN", ""),
    )
    if key not in keys:
        return 10003, "API key is invalid."
    now = now_ms()
    if not (now - int(rw) <= int(ts) < now + 1000):
        return 10002, (
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{now}],recv_window[{rw}]"
        )
    payload = rec.query if rec.method == "GET" else rec.body
    origin = ts + key + rw + payload
    expected = hmac.new(keys[key].encode(), origin.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig):
        return 10004, f"error sign! origin_string[{origin}]"
    return 0, "OK"


class RateLimits:
    """Counts requests per path and second; the headers Bybit sends with every answer."""

    def __init__(self) -> None:
        self._window: Counter[tuple[str, int]] = Counter()

    def headers(self, path: str) -> dict[str, str]:
        second = int(time.time())
        self._window[(path, second)] += 1
        limit = LIMITS.get(path, DEFAULT_LIMIT)
        return {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(max(0, limit - self._window[(path, second)])),
            "X-Bapi-Limit-Reset-Timestamp": str(now_ms()),
        }
