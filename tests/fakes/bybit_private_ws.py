"""The fake Bybit's private WebSocket (/v5/private): auth, subscribe, pushes, fault switches.

Connections are registered in the base server's ``conns`` (channel ``"private"``), so its
``drop()``/``down()``/``answer_pings`` switches and ``wait_subscribed(topic, "private")`` cover
them too. Frames are processed strictly in order per connection, as pybit needs (it sends
``auth`` and the subscribes back to back).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.bybit_server import PublicConn
from tests.fakes.bybit_wire import now_ms

if TYPE_CHECKING:
    from tests.fakes.bybit_server import FakeBybit

logger = logging.getLogger(__name__)
PRIVATE_TOPICS = {"order", "execution", "position", "wallet", "greeks", "execution.fast"}


def ws_signature(secret: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()


class FakePrivateWs:
    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.fail_auth = False  # switch: answer every auth with "Params Error"
        self.auth_results: list[bool] = []
        self.frames: list[dict[str, Any]] = []  # every client frame, all connections, in order
        self.pushed: list[dict[str, Any]] = []
        self.connections = 0
        self._authed: set[PublicConn] = set()
        self._key_of: dict[PublicConn, str] = {}  # the API key each connection authenticated with
        self._queues: dict[PublicConn, asyncio.Queue[dict[str, Any]]] = {}
        self.fake: FakeBybit | None = None

    def plugin(self, app: web.Application, fake: FakeBybit) -> None:
        self.fake = fake
        fake.state["private_ws"] = self
        app.router.add_get("/v5/private", self._handler)

    def push(self, message: dict[str, Any], keys: Collection[str] | None = None) -> None:
        """Send a topic message to authenticated subscribers (call on the server loop); with
        ``keys``, only to connections authenticated with one of them (one account's sockets)."""
        self.pushed.append(message)
        for conn, queue in list(self._queues.items()):
            mine = keys is None or self._key_of.get(conn) in keys
            if conn in self._authed and message["topic"] in conn.topics and mine:
                queue.put_nowait(message)

    async def _writer(self, conn: PublicConn, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            message = await queue.get()
            try:
                await conn.ws.send_str(json.dumps(message))
            except (ConnectionResetError, RuntimeError):
                return

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        assert self.fake is not None
        fake = self.fake
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = PublicConn(ws, request.transport, "private")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        fake.conns.add(conn)
        self._queues[conn] = queue
        self.connections += 1
        writer = asyncio.create_task(self._writer(conn, queue))
        try:
            async for msg in ws:
                if fake.mute:
                    continue
                if msg.type == WSMsgType.PING:
                    if fake.answer_pings:
                        await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await self._on_frame(conn, queue, msg.data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            writer.cancel()
            fake.conns.discard(conn)
            self._authed.discard(conn)
            self._key_of.pop(conn, None)
            self._queues.pop(conn, None)
        return ws

    async def _on_frame(
        self, conn: PublicConn, queue: asyncio.Queue[dict[str, Any]], raw: str
    ) -> None:
        assert self.fake is not None
        try:
            frame = json.loads(raw)
        except ValueError:
            return
        conn.received.append(frame)
        self.frames.append(frame)
        op, req_id = frame.get("op"), frame.get("req_id")
        reply: dict[str, Any]
        if op == "auth":
            ok = self._check_auth(frame.get("args") or [])
            self.auth_results.append(ok)
            if ok:
                self._authed.add(conn)
                self._key_of[conn] = str((frame.get("args") or [""])[0])
            reply = {"success": ok, "ret_msg": "" if ok else "Params Error", "op": "auth"}
        elif op == "subscribe":
            if self.fake.ack_delay_s:
                await asyncio.sleep(self.fake.ack_delay_s)
            topics = [str(t) for t in frame.get("args") or []]
            bad = [t for t in topics if t in self.fake.rejected_topics or t not in PRIVATE_TOPICS]
            if conn not in self._authed:
                reply = {"success": False, "ret_msg": "Request not authorized", "op": op}
            elif bad:
                reply = {
                    "success": False,
                    "ret_msg": f"error:handler not found,topic:{bad[0]}",
                    "op": op,
                }
            else:
                conn.topics.update(topics)
                reply = {"success": True, "ret_msg": "", "op": op}
        elif op == "unsubscribe":
            conn.topics.difference_update(str(t) for t in frame.get("args") or [])
            reply = {"success": True, "ret_msg": "", "op": op}
        elif op == "ping":
            reply = {"op": "pong", "args": [str(now_ms())]}
        else:
            reply = {"success": False, "ret_msg": f"error:unknown op {op}", "op": str(op)}
        reply["conn_id"] = conn.conn_id
        if req_id is not None:
            reply["req_id"] = req_id
        queue.put_nowait(reply)

    def _check_auth(self, args: list[Any]) -> bool:
        if self.fail_auth or len(args) != 3:
            return False
        key, expires, signature = str(args[0]), args[1], str(args[2])
        secret = self.keys.get(key)
        if secret is None or not isinstance(expires, int) or expires <= now_ms():
            return False
        return hmac.compare_digest(ws_signature(secret, expires), signature)

    @property
    def authenticated(self) -> int:
        return len(self._authed)
