"""The one retry policy for network calls: exponential backoff with jitter, on tenacity.

Every place that retries a network call (Bybit REST, the private and public Bybit sockets'
reconnect supervisors, the forecast client; the order router should too) declares a frozen
:class:`RetryPolicy` and retries through :func:`retry_async` / :func:`retry_sync`, or iterates
``async for attempt in policy.async_retrying(...)`` when it must act between attempts (look an
order up before re-sending it). Only errors the caller names as temporary are retried; the last one is re-raised
as itself (never tenacity's ``RetryError``).

The delay before attempt ``n + 1`` is ``min(max_s, initial_s * multiplier ** (n - 1))`` scaled by
a random factor in ``[1 - jitter, 1]`` (many clients hitting one venue must not retry in step),
then raised to the venue's retry-after (``exc.retry_after_s``, e.g. Bybit's 10006 reset time)
when it asks for longer, up to ``retry_after_max_s``. The exponent is capped before it is
computed, so attempt 10**6 of an endless reconnect loop cannot overflow. ``sleep`` and the random
source are injectable, so tests run on a fake clock.

Non-blocking backoff gates (the journal writer's reconnect, the forecast pump) are not retries of
one call and do not use this module.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tenacity
from pydantic import BaseModel, ConfigDict, Field, model_validator

logger = logging.getLogger(__name__)

T = TypeVar("T")
AsyncSleep = Callable[[float], Awaitable[None]]
SyncSleep = Callable[[float], None]
# What to retry: an exception class (or tuple of them), or a predicate on the exception.
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def retry_after_of(exc: BaseException | None) -> float:
    """The wait the venue asked for (``retry_after_s`` on the error), else 0."""
    value = getattr(exc, "retry_after_s", 0.0)
    try:
        wait = float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return wait if math.isfinite(wait) and wait > 0 else 0.0


class RetryPolicy(BaseModel):
    """How one kind of network call is retried (frozen; declare one per call site)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Attempts in all, the first included; None retries until the caller is cancelled
    # (reconnect supervisors).
    max_attempts: int | None = Field(default=4, ge=1)
    initial_s: float = Field(default=0.5, ge=0)
    max_s: float = Field(default=30.0, ge=0, le=86_400)
    multiplier: float = Field(default=2.0, ge=1)
    # Each delay is scaled by a random factor in [1 - jitter, 1]: bounded, never above max_s.
    jitter: float = Field(default=0.5, ge=0, le=1)
    # A venue's retry-after is honoured up to this (a broken header must not park us for days).
    retry_after_max_s: float = Field(default=60.0, ge=0, le=86_400)

    @model_validator(mode="after")
    def _ordered(self) -> RetryPolicy:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be >= initial_s")
        return self

    def backoff_s(self, attempt: int, rand: float = 1.0) -> float:
        """Delay after failed attempt ``attempt`` (1-based) without retry-after; ``rand`` in [0, 1]."""
        n = max(1, attempt) - 1
        base = self.max_s
        if self.initial_s <= 0:
            base = 0.0
        elif self.multiplier == 1:
            base = min(self.max_s, self.initial_s)
        else:
            # In log space, compared before anything is raised to a power: neither a huge
            # attempt number nor a tiny initial_s can overflow.
            log_delay = math.log(self.initial_s) + n * math.log(self.multiplier)
            if log_delay < math.log(self.max_s):
                try:
                    base = min(self.max_s, self.initial_s * self.multiplier**n)
                except OverflowError:  # a denormal initial_s: the power alone can overflow
                    base = self.max_s
        return base * (1.0 - self.jitter * min(1.0, max(0.0, rand)))

    def delay_s(
        self, attempt: int, exc: BaseException | None = None, rand: float | None = None
    ) -> float:
        """Backoff with jitter, raised to the venue's retry-after when that is longer."""
        r = random.random() if rand is None else rand
        wait = self.backoff_s(attempt, r)
        asked = min(retry_after_of(exc), self.retry_after_max_s)
        return max(wait, asked)

    # -- tenacity -----------------------------------------------------------------------------
    def wait(self, rand: Callable[[], float] = random.random) -> tenacity.wait.wait_base:
        return _PolicyWait(self, rand)

    def stop(self) -> tenacity.stop.stop_base:
        if self.max_attempts is None:
            return tenacity.stop_never
        return tenacity.stop_after_attempt(self.max_attempts)

    def async_retrying(
        self,
        retry_on: RetryOn,
        *,
        sleep: AsyncSleep = asyncio.sleep,
        what: str = "call",
        rand: Callable[[], float] = random.random,
        on_retry: Callable[[BaseException, int, float], None] | None = None,
        log_level: int = logging.WARNING,
    ) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(
            sleep=sleep, **self._options(retry_on, what, rand, on_retry, log_level)
        )

    def retrying(
        self,
        retry_on: RetryOn,
        *,
        sleep: SyncSleep = time.sleep,
        what: str = "call",
        rand: Callable[[], float] = random.random,
        on_retry: Callable[[BaseException, int, float], None] | None = None,
        log_level: int = logging.WARNING,
    ) -> tenacity.Retrying:
        return tenacity.Retrying(
            sleep=sleep, **self._options(retry_on, what, rand, on_retry, log_level)
        )

    def _options(
        self,
        retry_on: RetryOn,
        what: str,
        rand: Callable[[], float],
        on_retry: Callable[[BaseException, int, float], None] | None,
        log_level: int,
    ) -> dict[str, Any]:
        """What the sync and async retrying objects share (all but the sleep)."""
        return {
            "stop": self.stop(),
            "wait": self.wait(rand),
            "retry": _predicate(retry_on),
            "before_sleep": _log(what, on_retry, log_level),
            "reraise": True,
        }


class _PolicyWait(tenacity.wait.wait_base):
    def __init__(self, policy: RetryPolicy, rand: Callable[[], float]) -> None:
        self.policy = policy
        self.rand = rand

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        return self.policy.delay_s(retry_state.attempt_number, exc, self.rand())


def _predicate(retry_on: RetryOn) -> tenacity.retry_base:
    if isinstance(retry_on, type | tuple):
        kinds = retry_on

        def check(exc: BaseException) -> bool:
            return isinstance(exc, kinds)

    else:
        given = retry_on

        # Cancellation and interpreter exits are never retried, whatever the predicate says.
        def check(exc: BaseException) -> bool:
            return isinstance(exc, Exception) and bool(given(exc))

    return tenacity.retry_if_exception(check)


def _log(
    what: str, on_retry: Callable[[BaseException, int, float], None] | None, level: int
) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        delay = state.upcoming_sleep
        if exc is None:
            return
        logger.log(
            level, "%s failed (%s); retry %d in %.2f s", what, exc, state.attempt_number, delay
        )
        if on_retry is not None:
            on_retry(exc, state.attempt_number, delay)

    return before_sleep


async def retry_async(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    retry_on: RetryOn,
    *,
    sleep: AsyncSleep = asyncio.sleep,
    what: str = "call",
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
    log_level: int = logging.WARNING,
) -> T:
    """``await fn()`` until it succeeds, raises something not retried, or attempts run out
    (then the last error is raised as itself)."""
    # The first attempt outside tenacity: most calls succeed at once, and building the retrying
    # machinery costs more than a simulated venue's whole order (a backtest sends thousands).
    # A failure is handed to tenacity as its first attempt's outcome: the same decisions.
    failed: list[BaseException] = []
    try:
        return await fn()
    except BaseException as exc:  # replayed below, where tenacity decides (and re-raises)
        failed.append(exc)
    retrying = policy.async_retrying(
        retry_on, sleep=sleep, what=what, rand=rand, on_retry=on_retry, log_level=log_level
    )

    async def attempt() -> T:  # tenacity awaits only coroutine functions (a lambda is not one)
        if failed:
            raise failed.pop()
        return await fn()

    result: T = await retrying(attempt)
    return result


def retry_sync(
    fn: Callable[[], T],
    policy: RetryPolicy,
    retry_on: RetryOn,
    *,
    sleep: SyncSleep = time.sleep,
    what: str = "call",
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
    log_level: int = logging.WARNING,
) -> T:
    """The blocking twin of :func:`retry_async`."""
    retrying = policy.retrying(
        retry_on, sleep=sleep, what=what, rand=rand, on_retry=on_retry, log_level=log_level
    )
    result: T = retrying(fn)
    return result
