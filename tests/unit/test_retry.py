"""The one retry policy (cryptoarena.retry) on a fake clock: backoff, jitter, retry-after, caps."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest
from cryptoarena.retry import RetryPolicy, retry_after_of, retry_async, retry_sync
from cryptoarena.trading.exchange.errors import (
    AuthenticationError,
    TemporaryExchangeError,
)
from pydantic import ValidationError


class FakeClock:
    """A sleep that only moves a clock: tests see every delay and never wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Flaky:
    """Fails with the given errors in turn, then returns ``ok``; counts calls."""

    def __init__(self, *errors: BaseException, ok: str = "ok") -> None:
        self.errors = list(errors)
        self.ok = ok
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.ok

    async def acall(self) -> str:
        return self()


POLICY = RetryPolicy(max_attempts=5, initial_s=0.5, max_s=4.0, multiplier=2.0, jitter=0.5)


def test_exponential_backoff_with_bounded_jitter() -> None:
    # rand=0: no jitter (the full exponential), rand=1: the most jitter takes off (half).
    assert [POLICY.backoff_s(n, 0.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [POLICY.backoff_s(n, 1.0) for n in range(1, 5)] == [0.25, 0.5, 1.0, 2.0]
    for n, r in itertools.product(range(1, 12), (0.0, 0.3, 0.999)):
        d = POLICY.backoff_s(n, r)
        full = min(4.0, 0.5 * 2 ** (n - 1))
        assert full * 0.5 <= d <= full <= POLICY.max_s


def test_no_overflow_in_an_endless_reconnect_loop() -> None:
    endless = RetryPolicy(max_attempts=None, initial_s=0.2, max_s=30.0, multiplier=3.0)
    for attempt in (10**3, 10**6, 10**18):
        assert endless.backoff_s(attempt, 0.0) == 30.0
    assert RetryPolicy(initial_s=0.0, max_s=0.0).backoff_s(10**9, 0.5) == 0.0
    tiny = RetryPolicy(initial_s=1e-300, max_s=86_400, multiplier=1e300, max_attempts=None)
    assert tiny.backoff_s(1, 0.0) == 1e-300 and tiny.backoff_s(10**18, 0.0) == 86_400
    assert RetryPolicy(multiplier=1.0, initial_s=1.0, max_s=5.0).backoff_s(10**9, 0.0) == 1.0


def test_retry_after_is_honoured_and_capped() -> None:
    rate_limited = TemporaryExchangeError("10006", code=10006, retry_after_s=7.5)
    assert POLICY.delay_s(1, rate_limited, 0.0) == 7.5  # longer than the backoff: the venue wins
    assert POLICY.delay_s(4, TemporaryExchangeError("x", retry_after_s=0.1), 0.0) == 4.0
    silly = TemporaryExchangeError("x", retry_after_s=1e12)
    assert POLICY.delay_s(1, silly, 0.0) == POLICY.retry_after_max_s
    assert retry_after_of(ValueError("no retry-after")) == 0.0
    assert retry_after_of(TemporaryExchangeError("x", retry_after_s=float("nan"))) == 0.0


def test_sync_retries_temporary_errors_on_a_fake_clock() -> None:
    clock = FakeClock()
    fn = Flaky(TemporaryExchangeError("busy"), TemporaryExchangeError("busy", retry_after_s=3.0))
    seen: list[tuple[int, float]] = []
    got = retry_sync(
        fn,
        POLICY,
        TemporaryExchangeError,
        sleep=clock.sleep,
        rand=lambda: 0.0,
        on_retry=lambda exc, n, d: seen.append((n, d)),
    )
    assert got == "ok" and fn.calls == 3
    assert clock.sleeps == [0.5, 3.0]  # backoff, then the venue's retry-after (longer)
    assert seen == [(1, 0.5), (2, 3.0)]


def test_retries_are_logged_at_the_level_asked(caplog: pytest.LogCaptureFixture) -> None:
    """A caller that retries routinely (the forecast client) logs at DEBUG, not WARNING."""
    clock = FakeClock()
    fn = Flaky(TemporaryExchangeError("busy"))
    with caplog.at_level(logging.DEBUG, logger="cryptoarena.retry"):
        retry_sync(fn, POLICY, TemporaryExchangeError, sleep=clock.sleep, log_level=logging.DEBUG)
    records = [r for r in caplog.records if "retry 1" in r.getMessage()]
    assert records and {r.levelno for r in records} == {logging.DEBUG}


def test_gives_up_with_the_last_error_itself() -> None:
    clock = FakeClock()
    fn = Flaky(*[TemporaryExchangeError(f"busy {i}") for i in range(10)])
    with pytest.raises(TemporaryExchangeError, match="busy 4"):
        retry_sync(fn, POLICY, TemporaryExchangeError, sleep=clock.sleep, rand=lambda: 0.0)
    assert fn.calls == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]


def test_errors_not_named_are_never_retried() -> None:
    clock = FakeClock()
    fn = Flaky(AuthenticationError("bad key"))
    with pytest.raises(AuthenticationError):
        retry_sync(fn, POLICY, TemporaryExchangeError, sleep=clock.sleep)
    assert fn.calls == 1 and clock.sleeps == []
    # A predicate never retries cancellation, whatever it says.
    fn2 = Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        retry_sync(fn2, POLICY, lambda exc: True, sleep=clock.sleep)
    assert fn2.calls == 1


async def test_async_retries_with_an_injected_sleep() -> None:
    clock = FakeClock()
    fn = Flaky(ConnectionError("refused"), TimeoutError("slow"))
    got = await retry_async(
        lambda: fn.acall(),  # a plain callable returning an awaitable works too
        POLICY,
        (ConnectionError, TimeoutError),
        sleep=clock.asleep,
        rand=lambda: 1.0,
    )
    assert got == "ok" and clock.sleeps == [0.25, 0.5]  # full jitter taken: half the backoff


async def test_async_predicate_and_cancellation() -> None:
    clock = FakeClock()
    fn = Flaky(ValueError("retry me"), ValueError("fatal"))
    with pytest.raises(ValueError, match="fatal"):
        await retry_async(fn.acall, POLICY, lambda e: "retry" in str(e), sleep=clock.asleep)
    assert fn.calls == 2

    async def cancelled() -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await retry_async(cancelled, POLICY, lambda e: True, sleep=clock.asleep)
    assert len(clock.sleeps) == 1


async def test_unbounded_policy_keeps_going_until_success() -> None:
    clock = FakeClock()
    endless = RetryPolicy(max_attempts=None, initial_s=0.1, max_s=1.0)
    fn = Flaky(*[ConnectionError("down")] * 50)
    assert await retry_async(fn.acall, endless, ConnectionError, sleep=clock.asleep) == "ok"
    assert fn.calls == 51 and max(clock.sleeps) <= 1.0
    assert clock.sleeps[-1] >= 0.5  # jittered within [max/2, max] once capped


def test_policy_is_validated_and_frozen() -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(initial_s=5.0, max_s=1.0)
    with pytest.raises(ValidationError):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValidationError):
        POLICY.max_s = 9.0  # type: ignore[misc]
