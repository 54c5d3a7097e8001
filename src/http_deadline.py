"""A deadline for receiving each HTTP request, for both servers (model server and dashboard).

uvicorn closes a connection idle *between* requests (``timeout_keep_alive``) but waits forever
for the rest of a request that has started: a client sending its headers or its body a byte at
a time (or not at all) holds a connection, and a slot of the app, as long as it likes. Here a
request must have arrived completely, headers and body, within ``seconds`` of its first byte
(of the connection, for the first one); otherwise the connection is closed, with one INFO line.
An app waiting for the body then sees a disconnect (the model server counts it as a 499).
The time the app takes to answer is not limited here.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
from typing import Any, cast

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)


class _Deadline:
    """Mixed into a uvicorn HTTP protocol class (which provides ``cycle`` and ``transport``:
    the cycle is created when a request's headers are complete, ``more_body`` until its body
    is)."""

    cycle: Any
    transport: asyncio.Transport
    _deadline: asyncio.TimerHandle | None = None
    _armed_at: Any = None  # the cycle current when the deadline was set

    def __init__(self, *args: Any, request_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout_s = request_timeout_s

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        between = self.cycle is None or self.cycle.response_complete
        if between and (self._deadline is None or self._armed_at is not self.cycle):
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._armed_at = self.cycle
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.request_timeout_s, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is not self._armed_at and not (cycle.more_body and not cycle.response_complete):
            return  # the request is in (answering it takes what it takes), or idle between
        peer = self.transport.get_extra_info("peername")
        logger.info(
            "closed a connection from %s: request not received within %.0f s",
            peer[0] if peer else "?",
            self.request_timeout_s,
        )
        self.transport.close()


class DeadlineH11Protocol(_Deadline, H11Protocol):
    pass


# uvicorn's "auto" picks httptools when it is installed, else h11: the same here.
HTTPTOOLS = importlib.util.find_spec("httptools") is not None
if HTTPTOOLS:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class DeadlineHttpToolsProtocol(_Deadline, HttpToolsProtocol):
        pass


def deadline_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's ``http`` protocol with the request deadline, for ``uvicorn.Config(http=...)``.
    A partial of a module-level class, so a multi-worker server can pickle it into its worker
    processes."""
    base: Any = DeadlineHttpToolsProtocol if HTTPTOOLS else DeadlineH11Protocol
    protocol: Any = functools.partial(base, request_timeout_s=seconds)
    return cast(type[asyncio.Protocol], protocol)
