"""The fake Bybit server speaks the public WebSocket wire format and its fault switches work."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
import websocket
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import Trade
from cryptoarena.data.samples import NAUTILUS_TRADES, sample_path

from tests.fakes.bybit_server import FakeBybit


@pytest.fixture(scope="module")
def real_trades() -> list[Trade]:
    frame, _ = load_trades(sample_path(NAUTILUS_TRADES))
    return [
        Trade(int(r.ts), float(r.price), float(r.size), int(r.side), str(r.trade_id))
        for r in frame.head(50).itertuples()
    ]


def _recv_json(ws: websocket.WebSocket) -> dict:
    return json.loads(ws.recv())


def test_subscribe_ping_and_trades(real_trades: list[Trade]) -> None:
    with FakeBybit() as fake:
        ws = websocket.create_connection(fake.ws_url("/v5/public/linear"), timeout=5)
        ws.send(json.dumps({"op": "subscribe", "req_id": "r1", "args": ["publicTrade.BTCUSDT"]}))
        ack = _recv_json(ws)
        assert ack["success"] is True and ack["req_id"] == "r1" and ack["op"] == "subscribe"
        assert ack["ret_msg"] == "" and ack["conn_id"]
        ws.send(json.dumps({"op": "ping", "req_id": "p1"}))
        pong = _recv_json(ws)
        assert pong == {**pong, "ret_msg": "pong", "op": "ping", "req_id": "p1", "success": True}
        ws.ping(b"hb")  # protocol-level ping is answered with a pong frame
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"hb"

        assert fake.push_trades("BTCUSDT", real_trades[:3]) == 1
        msg = _recv_json(ws)
        assert msg["topic"] == "publicTrade.BTCUSDT" and msg["type"] == "snapshot"
        first = msg["data"][0]
        assert set(first) >= {"T", "s", "S", "v", "p", "L", "i", "BT", "seq"}
        assert first["T"] == real_trades[0].ts // 1_000_000
        assert float(first["p"]) == real_trades[0].price and isinstance(first["p"], str)
        assert "e" not in first["v"]
        assert [d["i"] for d in msg["data"]] == [t.trade_id for t in real_trades[:3]]
        ws.close()

        # Trades pushed are also served by GET /v5/market/recent-trade, newest first.
        body = httpx.get(
            f"{fake.http_url}/v5/market/recent-trade",
            params={"category": "linear", "symbol": "BTCUSDT", "limit": 2},
        ).json()
        assert body["retCode"] == 0
        assert [r["execId"] for r in body["result"]["list"]] == [
            real_trades[2].trade_id,
            real_trades[1].trade_id,
        ]


def test_spot_ack_and_rejected_subscription() -> None:
    with FakeBybit() as fake:
        fake.reject_topic("publicTrade.NOTASYMBOL")
        ws = websocket.create_connection(fake.ws_url("/v5/public/spot"), timeout=5)
        ws.send(json.dumps({"op": "subscribe", "req_id": "a", "args": ["publicTrade.BTCUSDT"]}))
        assert _recv_json(ws)["ret_msg"] == "subscribe"
        ws.send(json.dumps({"op": "subscribe", "req_id": "b", "args": ["publicTrade.NOTASYMBOL"]}))
        rejected = _recv_json(ws)
        assert rejected["success"] is False and rejected["req_id"] == "b"
        assert rejected["ret_msg"] == "error:handler not found,topic:publicTrade.NOTASYMBOL"
        assert fake.subscribers("publicTrade.BTCUSDT", "spot") == 1
        assert fake.subscribers("publicTrade.NOTASYMBOL", "spot") == 0
        ws.close()


def test_abrupt_graceful_and_downtime() -> None:
    with FakeBybit() as fake:
        ws = websocket.create_connection(fake.ws_url(), timeout=5)
        assert fake.drop() == 1
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            ws.recv()

        ws = websocket.create_connection(fake.ws_url(), timeout=5)
        deadline = time.monotonic() + 5  # the handshake is done before the server's handler runs
        while not fake.conns and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.drop(graceful=True) == 1
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1000

        fake.down(0.5)
        assert fake.is_down
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", fake.port), timeout=1)
        deadline = time.monotonic() + 5
        while fake.is_down and time.monotonic() < deadline:
            time.sleep(0.05)
        ws = websocket.create_connection(fake.ws_url(), timeout=5)  # same port again
        ws.close()
        assert fake.stats["downtimes"] == 1


def test_plugins_add_routes() -> None:
    from aiohttp import web

    def plugin(app: web.Application, fake: FakeBybit) -> None:
        fake.state["hits"] = 0

        async def hello(request: web.Request) -> web.Response:
            fake.state["hits"] += 1
            return web.json_response({"ok": True})

        app.router.add_get("/hello", hello)

    with FakeBybit(plugins=[plugin]) as fake:
        assert httpx.get(f"{fake.http_url}/hello").json() == {"ok": True}
        assert fake.call(lambda: fake.state["hits"]) == 1
