"""Fan-out of order updates and fills to async consumers, nothing lost before the first one."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)
_CLOSED = object()
BACKLOG_LIMIT = 100_000  # a backtest nobody listens to must not grow without bound


class UpdateStream(Generic[T]):
    """Each :meth:`subscribe` gets every event published after it; events published before
    anyone subscribed are kept and handed to the first subscriber (so a worker that starts
    listening after placing its first order still sees the fill)."""

    def __init__(self, backlog_limit: int = BACKLOG_LIMIT) -> None:
        self._subscribers: list[asyncio.Queue[object]] = []
        self._backlog: deque[T] | None = deque(maxlen=backlog_limit)
        self._dropped = 0
        self._pulled: list[tuple[deque[T], Callable[[], None]]] = []

    def publish(self, event: T) -> None:
        if self._backlog is not None:
            if len(self._backlog) == self._backlog.maxlen:
                self._dropped += 1
                if self._dropped == 1:
                    logger.warning("no updates() subscriber yet: dropping the oldest events")
            self._backlog.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)
        for pending, wake in self._pulled:
            if not pending:
                wake()
            pending.append(event)

    def subscribe_sync(self, wake: Callable[[], None]) -> deque[T]:
        """A subscriber without the event loop (a backtest's synchronous drive): events are
        appended to the returned deque, which its owner empties; ``wake()`` is called when an
        event arrives in an empty one, as an async subscriber's task would be woken."""
        pending: deque[T] = deque()
        if self._backlog is not None:
            pending.extend(self._backlog)
            self._backlog = None
        self._pulled.append((pending, wake))
        if pending:
            wake()
        return pending

    def subscribe(self) -> AsyncIterator[T]:
        queue: asyncio.Queue[object] = asyncio.Queue()
        if self._backlog is not None:
            for event in self._backlog:
                queue.put_nowait(event)
            self._backlog = None
        self._subscribers.append(queue)
        return self._iterate(queue)

    def close(self) -> None:
        for queue in self._subscribers:
            queue.put_nowait(_CLOSED)

    async def _iterate(self, queue: asyncio.Queue[object]) -> AsyncIterator[T]:
        try:
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                yield item  # type: ignore[misc]
        finally:
            if queue in self._subscribers:
                self._subscribers.remove(queue)
