"""Running the engine's coroutines without an event loop round trip (backtests).

The engine's steps are ``async`` because live venues answer over the network. Against a
simulated venue nothing inside them ever waits, so a backtest can run such a step to its end
right here (:func:`run_now`): the same code path as live, without scheduling a task or visiting
the event loop per tick. A step that does try to wait is a bug in the backtest's wiring (a real
network call, a sleep): it is closed and reported, never silently run some other way.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WouldWait(RuntimeError):
    """A coroutine driven by :func:`run_now` tried to wait for something."""


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion synchronously; raise :class:`WouldWait` if it suspends."""
    try:
        waited_on = coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    name = getattr(coro, "__qualname__", repr(coro))
    raise WouldWait(f"{name} waited on {waited_on!r}: not runnable synchronously")
