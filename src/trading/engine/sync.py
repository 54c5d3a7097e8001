"""Running the engine's coroutines without an event loop round trip (backtests).

The engine's steps are ``async`` because live venues answer over the network. Against a
simulated venue nothing inside them ever waits, so a backtest can run such a step to its end
right here (:func:`run_now`): the same code path as live, without scheduling a task or visiting
the event loop per tick. A step that does try to wait is a bug in the backtest's wiring (a real
network call, a sleep): it is closed and reported, never silently run some other way.
"""

from __future__ import annotations

import asyncio
import types
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

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
    # A native coroutine names its function; any other Coroutine says what it is.
    name = coro.__qualname__ if isinstance(coro, types.CoroutineType) else repr(coro)
    raise WouldWait(f"{name} waited on {waited_on!r}: not runnable synchronously")


class SoonTask:
    """A coroutine handed to :class:`Soon`: run when the ready queue is run, never waits."""

    __slots__ = ("_coro", "_done")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro: Coroutine[Any, Any, Any] | None = coro
        self._done = False

    def done(self) -> bool:
        return self._done

    def cancel(self) -> bool:
        if self._done or self._coro is None:
            return False
        self._coro.close()
        self._coro, self._done = None, True
        return True

    def step(self) -> None:
        """Run it now (the ready queue calls this once)."""
        coro, self._coro = self._coro, None
        if coro is None:
            return
        try:
            run_now(coro)
        finally:
            self._done = True


class Soon:
    """A backtest's stand-in for the event loop's ready queue.

    Work that a live run hands to a task (an exchange update consumer woken by an event, a
    forecast request) is queued here in the same order and run by :meth:`run_ready` at exactly
    the points where the async path yields (``await asyncio.sleep(0)``): the same work, in the
    same order, on the same clock, so the synchronous drive journals the same documents."""

    def __init__(self) -> None:
        self._ready: deque[Callable[[], None]] = deque()

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._ready.append(fn)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> SoonTask:
        task = SoonTask(coro)
        self._ready.append(task.step)
        return task

    def run_ready(self) -> None:
        """One pass, as one event-loop iteration: what was queued before it started (work
        queued while it runs waits for the next pass, as a task created now would)."""
        ready = self._ready
        for _ in range(len(ready)):
            ready.popleft()()

    async def pause(self) -> None:
        """The synchronous ``asyncio.sleep(0)``: run the ready work, never suspend."""
        if self._ready:  # most ticks of a backtest: nothing queued
            self.run_ready()

    async def join(self, task: Any) -> None:
        """Wait for a spawned task: run passes until it is done (it never waits itself)."""
        while not task.done():
            if not self._ready:
                raise WouldWait(f"{task!r} is not done and nothing is ready to run")
            self.run_ready()


class LoopTasks:
    """The live counterpart of :class:`Soon`: real tasks on the running event loop."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return asyncio.get_running_loop().create_task(coro)

    async def pause(self) -> None:
        await asyncio.sleep(0)

    async def join(self, task: Any) -> None:
        await task


class Tasks(Protocol):
    """Where the engine's background work runs: :class:`LoopTasks` (live) or :class:`Soon`."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Any: ...

    async def pause(self) -> None: ...

    async def join(self, task: Any) -> None: ...
