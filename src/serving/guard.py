"""Request-body guard of the forecast server: size and content type, checked before reading.

A body is refused with 413 when its declared ``Content-Length`` exceeds the limit (nothing of it
is read: a client announcing 1 GB costs the server nothing), or as soon as a chunked body grows
past it; with 415 when it is declared as anything but JSON. A plain ASGI middleware: it sits in
front of routing, so no route (and no body parser) sees such a request.
"""

from __future__ import annotations

import json
import logging

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/<x>+json``, any parameters; absent counts as JSON
    (FastAPI's own rule: clients that send bytes without a type are not refused)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            # The unread body stays on the socket: close it rather than parse it as a request.
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    """413 for bodies over ``max_bytes``, 415 for non-JSON bodies, before any route runs."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _refuse(send, 400, f"bad Content-Length header: {declared[:40]!r}")
                return
            if length > self.max_bytes:
                await _refuse(send, 413, self._too_large(f"{length} bytes"))
                return
            if length > 0 and not is_json(headers.get("content-type")):
                await _refuse(send, 415, _not_json(headers.get("content-type")))
                return
            await self.app(scope, receive, send)
            return
        # No length announced (chunked): count what arrives, stop at the limit.
        if not is_json(headers.get("content-type")):
            await _refuse(send, 415, _not_json(headers.get("content-type")))
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the route's body read: FastAPI answers an HTTPException as
                    # is (any other error there would become its generic 400).
                    raise HTTPException(413, self._too_large(f"more than {self.max_bytes} bytes"))
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self, size: str) -> str:
        return (
            f"request body too large: {size}, the limit is {self.max_bytes} bytes "
            "(ARENA_SERVING__MAX_BODY_BYTES)"
        )


def _not_json(content_type: str | None) -> str:
    return f"unsupported content type {content_type!r}: send application/json"
