"""Forecasts ahead of need: a background pump keeps the latest one; predictions get outcomes.

The pump sends the latest 1-second bars to the forecast source once per closed bar, with at
most one request in flight (a newer bar replaces a waiting one), so the AI strategy only reads
``pump.view(now)``: never a network call on the hot path. In lock-step mode (backtests on a
simulated clock) the worker awaits the in-flight request before the next bar, so a replay
sees forecasts exactly as timely as live trading does, only faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import pandas as pd
from cryptoarena.data.records import BAR_COLUMNS, NS_PER_S, Bar

if TYPE_CHECKING:  # serving.client imports httpx: only its declaration's type is needed here
    from cryptoarena.serving.client import ForecastCapabilities

logger = logging.getLogger(__name__)

Record = Callable[[str, dict[str, Any]], str]


class ForecastLike(Protocol):
    @property
    def bar_ts_ns(self) -> int: ...
    @property
    def log_returns(self) -> tuple[float, ...]: ...
    @property
    def prices(self) -> tuple[float, ...]: ...
    @property
    def model_name(self) -> str: ...
    @property
    def model_version(self) -> str: ...


class ForecastSource(Protocol):
    """serving.client.ForecastClient fits; so does an in-process adapter. A source declares
    what it is (``capabilities``) instead of the engine probing it for methods."""

    capabilities: ForecastCapabilities
    # The MLflow run of the model behind it when the source holds one (in-process); None
    # otherwise (a model server is asked for its own).
    model_run_id: str | None

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Any: ...

    async def health(self) -> bool: ...

    async def aclose(self) -> None: ...


class LookupSource(ForecastSource, Protocol):
    """A source that declares ``lookup``: forecasts computed before a backtest, by bar."""

    computed: int  # forecasts computed before the replay

    def forecast_for(self, symbol: str, n_bars: int, last: int) -> Any:
        """The forecast from the bar that opened at ``last`` given ``n_bars`` bars."""
        ...


class BatchSource(ForecastSource, Protocol):
    """A source that declares ``batches``: it can compute a whole replay's forecasts up front."""

    def precompute(self, bars: pd.DataFrame, *, window: int, clock: Any) -> LookupSource:
        """A lookup source with the forecast of every bar of ``bars`` (``window`` bars each)."""
        ...


class BarWindow:
    """The last ``size`` bars, kept column by column so a frame costs no Python loop over rows."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._cols: dict[str, deque[Any]] = {name: deque(maxlen=size) for name in BAR_COLUMNS}

    def __len__(self) -> int:
        return len(self._cols["ts"])

    def append(self, bar: Bar) -> None:
        for name, col in self._cols.items():
            col.append(getattr(bar, name))

    def last(self, name: str) -> Any:
        """The newest bar's ``name`` column (NaN for an empty window)."""
        col = self._cols[name]
        return col[-1] if col else float("nan")

    def frame(self) -> pd.DataFrame:
        cols = self._cols
        data = {
            name: np.array(cols[name], dtype=np.int64 if name in ("ts", "trades") else np.float64)
            for name in BAR_COLUMNS
        }
        return pd.DataFrame(data, copy=False)


MAX_BACKOFF_S = 30.0
# A prediction's outcome is the close of the bar ending at its target time; a bar closing later
# than this after it (a gap in the bars) gives no outcome.
MAX_OUTCOME_LAG_NS = 2 * NS_PER_S


def backoff_s(consecutive: int) -> float:
    """The pause after ``consecutive`` failures: 1, 2, 4 ... s, capped (the exponent too, so a
    server down for hours never overflows a float)."""
    return min(MAX_BACKOFF_S, 2.0 ** min(max(consecutive - 3, 0), 16))


@dataclass(frozen=True, slots=True)
class PendingPrediction:
    event_id: str
    target_ns: int


class ForecastPump:
    def __init__(
        self,
        source: ForecastSource,
        symbol: str,
        *,
        window: int,
        max_age_s: float,
        record: Record,
        health_every_s: float = 10.0,
        tasks: Any = None,
    ) -> None:
        self.source = source
        # A source that looks forecasts up by bar (declared) needs no frame of bars per request.
        self._lookup = cast("LookupSource", source) if source.capabilities.lookup else None
        # Where requests run: None, tasks on the running loop; a backtest's synchronous drive
        # passes its ready queue (engine.sync.Soon): the same requests, in the same order.
        self.tasks = tasks
        self.symbol = symbol
        self.max_age_s = max_age_s
        self._record = record
        self.window = BarWindow(window)
        self._task: Any = None  # the request in flight (an asyncio.Task, or a SoonTask)
        self._waiting = False
        self.latest: ForecastLike | None = None
        self.problem: str | None = "no forecast yet"
        self.healthy = True
        self._health_every_ns = int(health_every_s * NS_PER_S)
        self._next_health_ns = 0
        self._model_version: str | None = None
        self.pending: deque[PendingPrediction] = deque()
        self.unresolvable = 0  # due during a gap in the bars: no honest outcome
        self.requests = 0
        self.failures = 0
        # Circuit breaker: after repeated failures, try again only after a growing pause.
        self._consecutive = 0
        self._retry_at_ns = 0
        self._now_ns = 0

    # -- requests ---------------------------------------------------------------------------
    def on_bar(self, bar: Bar, now_ns: int) -> None:
        """A 1-second bar closed: request a forecast for it (or queue it behind the one in flight)."""
        self.window.append(bar)
        if now_ns >= self._next_health_ns:
            self._next_health_ns = now_ns + self._health_every_ns
            self._spawn_health()
        self._now_ns = now_ns
        if self._task is not None and not self._task.done():
            self._waiting = True
            return
        if now_ns < self._retry_at_ns:
            return
        self._start()

    def _start(self) -> None:
        self._waiting = False
        self._task = self._spawn(self._fetch())

    def _spawn(self, coro: Any) -> Any:
        if self.tasks is not None:
            return self.tasks.spawn(coro)
        return asyncio.get_running_loop().create_task(coro)

    async def _fetch(self) -> None:
        # The frame is built here, in the task, not on the tick that closed the bar: it sees
        # the same bars (the next one is appended only after this task has started).
        # A source that looks forecasts up by bar (computed before a backtest) needs no frame:
        # building one per bar would cost more than the whole decision step.
        lookup = self._lookup
        window = self.window
        frame = None if lookup is not None else window.frame()
        base = window.last("close")
        self.requests += 1
        try:
            if lookup is not None:
                forecast = lookup.forecast_for(self.symbol, len(window), window.last("ts"))
            else:
                forecast = await self.source.forecast(self.symbol, frame)
        except Exception as exc:  # ForecastUnavailable and anything the source raises
            self.failures += 1
            self._consecutive += 1
            self.problem = f"forecast unavailable: {exc}"  # ForecastUnavailable: its reason
            logger.debug("forecast failed: %s", self.problem)
            if self._consecutive >= 3:
                pause_s = backoff_s(self._consecutive)
                self._retry_at_ns = self._now_ns + int(pause_s * NS_PER_S)
                self._waiting = False
        else:
            self._consecutive = 0
            self._retry_at_ns = 0
            self.latest = forecast
            self.problem = None
            self._on_forecast(forecast, base)
        if self._waiting:
            self._start()

    def _spawn_health(self) -> None:
        async def check() -> None:
            try:
                ok = bool(await self.source.health())
            except Exception:
                ok = False
            if ok != self.healthy:
                self.healthy = ok
                self._record(
                    "model_events",
                    {"type": "health", "healthy": ok, "model_version": self._model_version},
                )

        self._spawn(check())

    async def settle(self) -> None:
        """Lock-step mode: wait for the request in flight (and a queued one) to finish."""
        while self._task is not None and not self._task.done():
            await (self.tasks.join(self._task) if self.tasks is not None else self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await (self.tasks.join(self._task) if self.tasks is not None else self._task)
        await self.source.aclose()

    # -- what the AI strategy sees ----------------------------------------------------------
    def view(self, now_ns: int) -> tuple[ForecastLike | None, str | None, float | None]:
        """(forecast, problem, age in s): a stale, missing or unhealthy forecast is withheld."""
        forecast = self.latest
        if not self.healthy:
            return None, "model unhealthy", None
        if forecast is None:
            return None, self.problem or "no forecast yet", None
        age_s = (now_ns - (forecast.bar_ts_ns + NS_PER_S)) / NS_PER_S
        if age_s > self.max_age_s:
            why = self.problem or "no newer forecast"
            return None, f"forecast stale ({age_s:.1f} s > {self.max_age_s} s; {why})", age_s
        return forecast, None, age_s

    # -- predictions and outcomes -----------------------------------------------------------
    def _on_forecast(self, forecast: ForecastLike, base: float) -> None:
        if forecast.model_version != self._model_version:
            self._record(
                "model_events",
                {
                    "type": "model_in_use",
                    "model_name": forecast.model_name,
                    "model_version": forecast.model_version,
                    "previous_version": self._model_version,
                },
            )
            self._model_version = forecast.model_version
        close_ns = forecast.bar_ts_ns + NS_PER_S
        horizon = len(forecast.log_returns)
        target_ns = close_ns + horizon * NS_PER_S
        event_id = self._record(
            "predictions",
            {
                "symbol": self.symbol,
                "bar_ts_ns": forecast.bar_ts_ns,
                "ts_ns": close_ns,
                "base_price": base,
                "horizon_s": horizon,
                "log_returns": list(forecast.log_returns),
                "predicted_price": forecast.prices[-1] if forecast.prices else None,
                "target_ts_ns": target_ns,
                "model_name": forecast.model_name,
                "model_version": forecast.model_version,
                "realised_price": None,
            },
        )
        self.pending.append(PendingPrediction(event_id, target_ns))

    def restore_pending(self, pending: list[PendingPrediction]) -> None:
        """Predictions a previous incarnation recorded but never resolved (a crash, a stop
        before their time): resolved like new ones, from the bars that close from now on."""
        merged = sorted([*pending, *self.pending], key=lambda p: p.target_ns)
        self.pending = deque(merged)

    def resolve_recorded(
        self, bars: pd.DataFrame, set_outcome: Callable[[str, float, int], None]
    ) -> int:
        """Resolve pending predictions from recorded 1-second bars (columns ts, close): each
        from the first bar that closed at or after its target time, as :meth:`resolve` does."""
        if bars.empty or not self.pending:
            return 0
        close_ns = bars["ts"].to_numpy(dtype=np.int64) + NS_PER_S
        closes = bars["close"].to_numpy(dtype=np.float64)
        done = 0
        while self.pending and self.pending[0].target_ns <= close_ns[-1]:
            pending = self.pending.popleft()
            i = int(np.searchsorted(close_ns, pending.target_ns, side="left"))
            if close_ns[i] - pending.target_ns > MAX_OUTCOME_LAG_NS:
                self.unresolvable += 1  # no recorded bar at its time: a gap, not a price
                continue
            set_outcome(pending.event_id, float(closes[i]), int(close_ns[i]))
            done += 1
        return done

    def resolve(self, bar: Bar, set_outcome: Callable[[str, float, int], None]) -> int:
        """A 1-second bar closed: fill in the realised price of predictions that came due."""
        close_ns = bar.ts + NS_PER_S
        done = 0
        while self.pending and self.pending[0].target_ns <= close_ns:
            pending = self.pending.popleft()
            if close_ns - pending.target_ns > MAX_OUTCOME_LAG_NS:
                # Taken over from a crashed incarnation and due while nobody watched: a later
                # bar's price would be a wrong outcome. Left unresolved (counted).
                self.unresolvable += 1
                continue
            set_outcome(pending.event_id, bar.close, close_ns)
            done += 1
        return done
