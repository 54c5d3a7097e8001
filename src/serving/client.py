"""The client the trading worker uses: forecasts or a clear ``ForecastUnavailable``, never stale ones.

Each attempt has a hard timeout; connection errors, timeouts and 5xx are retried ``retries``
times under the project's retry policy (:mod:`cryptoarena.retry`: short exponential backoff with
jitter, a 503's ``Retry-After`` honoured up to the cap), a 4xx is not (the request itself is
wrong). A forecast whose last
bar is older than ``max_age_s`` by the injected clock (exchange time in a replay) is refused:
the AI strategy must stand aside rather than act on an old view of the market.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
from cryptoarena.clock import Clock, LiveClock
from cryptoarena.data.records import BAR_COLUMNS, NS_PER_S
from cryptoarena.retry import AsyncSleep, RetryPolicy, retry_async

logger = logging.getLogger(__name__)

DEFAULT_TAIL = 512  # bars sent when the server's model needs are not known yet


class _Temporary(Exception):
    """One attempt failed in a way another attempt may not (timeout, network, 5xx)."""

    def __init__(self, reason: str, retry_after_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class ForecastUnavailable(RuntimeError):
    """No usable forecast now; ``reason`` says why (timeout, server error, stale, bad input)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ForecastCapabilities:
    """What a forecast source declares, so the engine never probes it (a served model, which
    may always wait on the network, declares nothing)."""

    waits: bool = True  # a request may wait (network, inference in a thread): no sync drive
    # Forecasts looked up by bar (computed before a backtest): the pump calls
    # ``forecast_for(symbol, n_bars, last_ts)`` and builds no frame of bars.
    lookup: bool = False
    # The model is in-process and its forecasts depend on past bars only: a backtest may have
    # ``precompute(bars, window=, clock=)`` compute them all up front, in batches.
    batches: bool = False


SERVED = ForecastCapabilities()


@dataclass(frozen=True)
class Forecast:
    """A forecast path for 1…15 s after the close of the bar that opened at ``bar_ts_ns``."""

    symbol: str
    bar_ts_ns: int
    log_returns: tuple[float, ...]
    prices: tuple[float, ...]
    model_name: str
    model_version: str
    received_ns: int

    @property
    def bar_close_ns(self) -> int:
        return self.bar_ts_ns + NS_PER_S

    def age_ns(self, now_ns: int) -> int:
        """How old the market view is: time since the last bar closed (or since receipt, if later)."""
        return now_ns - min(self.bar_close_ns, self.received_ns)

    def is_stale(self, now_ns: int, max_age_s: float) -> bool:
        return self.age_ns(now_ns) > max_age_s * NS_PER_S


def bars_payload(bars: pd.DataFrame) -> dict[str, list[Any]]:
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ForecastUnavailable(f"bars lack columns {missing}")
    return {c: bars[c].tolist() for c in BAR_COLUMNS}


class ForecastClient:
    capabilities = SERVED
    model_run_id: str | None = None  # the server's model: asked for at /v1/model when needed

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 0.5,
        retries: int = 1,
        max_age_s: float = 2.0,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: AsyncSleep = asyncio.sleep,
    ) -> None:
        if timeout_s <= 0 or retries < 0 or max_age_s <= 0:
            raise ValueError("timeout_s and max_age_s must be > 0 and retries >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        # Forecasts go stale in seconds: short waits, never longer than one attempt's timeout.
        pause = min(0.05, timeout_s)
        self.retry_policy = RetryPolicy(
            max_attempts=retries + 1,
            initial_s=pause,
            max_s=max(pause, min(0.2, timeout_s)),
            retry_after_max_s=timeout_s,
        )
        self._sleep = sleep
        self.max_age_s = max_age_s
        self.clock: Clock = clock or LiveClock()
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=httpx.Timeout(timeout_s), transport=transport
        )
        self._need_bars: int | None = None  # the serving model's min_bars, learned on first use

    async def __aenter__(self) -> ForecastClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def health(self) -> bool:
        """True when the server is up AND has a model (its /ready says so)."""
        try:
            response = await self._http.get("/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _model_bars(self) -> int:
        if self._need_bars is None:
            try:
                info = await self._request("GET", "/v1/model")
                self._need_bars = int(info["min_bars"])
            except ForecastUnavailable:
                return DEFAULT_TAIL
        return self._need_bars

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        """The forecast for the last bar of ``bars``; raises ForecastUnavailable otherwise."""
        if len(bars) == 0:
            raise ForecastUnavailable("no bars")
        last_close_ns = int(bars["ts"].iloc[-1]) + NS_PER_S
        if self.clock.now_ns() - last_close_ns > self.max_age_s * NS_PER_S:
            raise ForecastUnavailable("stale: the last bar is older than max_age_s")
        need = await self._model_bars()
        body = {"symbol": symbol, "bars": bars_payload(bars.iloc[-need:])}
        data = await self._request("POST", "/v1/forecast", json=body)
        forecast = Forecast(
            symbol=str(data["symbol"]),
            bar_ts_ns=int(data["bar_ts_ns"]),
            log_returns=tuple(float(x) for x in data["log_returns"]),
            prices=tuple(float(x) for x in data["prices"]),
            model_name=str(data["model_name"]),
            model_version=str(data["model_version"]),
            received_ns=self.clock.now_ns(),
        )
        if forecast.is_stale(forecast.received_ns, self.max_age_s):
            raise ForecastUnavailable(
                f"stale: forecast for bar {forecast.bar_ts_ns} arrived "
                f"{forecast.age_ns(forecast.received_ns) / NS_PER_S:.2f} s after it closed"
            )
        return forecast

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return await retry_async(
                lambda: self._attempt(method, path, **kwargs),
                self.retry_policy,
                _Temporary,
                sleep=self._sleep,
                what=f"forecast {method} {path}",
                log_level=logging.DEBUG,  # the caller stands aside and says why
            )
        except _Temporary as exc:
            raise ForecastUnavailable(exc.reason) from None

    async def _attempt(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise _Temporary(f"timeout after {self.timeout_s} s") from None
        except httpx.HTTPError as exc:
            raise _Temporary(f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 200:
            result: dict[str, Any] = response.json()
            return result
        detail = _detail(response)
        if response.status_code < 500:
            # The request is wrong (or the model changed its needs): no retry helps,
            # but forget the learned bar count so the next call re-reads it.
            self._need_bars = None
            raise ForecastUnavailable(f"HTTP {response.status_code}: {detail}")
        raise _Temporary(f"HTTP {response.status_code}: {detail}", _retry_after(response.headers))


def _retry_after(headers: httpx.Headers) -> float:
    """Seconds of a ``Retry-After: <seconds>`` header (a date form is ignored)."""
    try:
        return max(0.0, float(headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:200]
    if isinstance(detail, list) and detail:
        first = detail[0]
        return f"{'.'.join(map(str, first.get('loc', [])))}: {first.get('msg')}"
    return str(detail) if detail is not None else response.text[:200]
