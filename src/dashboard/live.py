"""The live stream: one poller follows the journal and pushes new fills, equity points,
forecasts, risk events and run status to every open page (Server-Sent Events).

The poller follows the journal through the reader's tail (new rows only, see tail.py), feeds the
in-memory read model, and turns the latest run's new documents into events; events carry a
sequence number so a page can tell when it missed some and reload from the REST routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from cryptoarena.dashboard.reader import DashboardReader, risk_event

logger = logging.getLogger(__name__)

# Journal collection → event name sent to pages.
WATCHED = {
    "fills": "fill",
    "equity": "equity",
    "predictions": "forecast",
    "risk_events": "risk",
}
QUEUE_SIZE = 1000
PING_S = 15.0


class LiveHub:
    def __init__(self, reader: DashboardReader, poll_interval_s: float) -> None:
        self.reader = reader
        self.poll_interval_s = poll_interval_s
        self.seq = 0
        self._subscribers: set[asyncio.Queue[tuple[int, str, dict[str, Any]]]] = set()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        # Start at the present: pages load history from the REST routes.
        await asyncio.to_thread(self._poll, True)
        self._task = asyncio.create_task(self._loop(), name="dashboard-live")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for queue in list(self._subscribers):
            queue.put_nowait((-1, "bye", {}))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                events = await asyncio.to_thread(self._poll, False)
            except Exception as exc:  # a journal hiccup must not end the stream
                logger.warning("dashboard live poll failed: %s", exc)
                continue
            for name, data in events:
                self.publish(name, data)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self.seq += 1
        for queue in list(self._subscribers):
            # A stalled page drops events: it sees the gap in ids and reloads.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait((self.seq, name, data))

    # -- polling (in a worker thread) ---------------------------------------------------------
    def _poll(self, prime: bool) -> list[tuple[str, dict[str, Any]]]:
        new = self.reader.poll()
        if prime:
            return []  # the backlog: pages load history from the REST routes
        latest = self.reader.latest_run_id()
        events: list[tuple[str, dict[str, Any]]] = []
        runs_changed = False
        for coll, doc in new:
            if coll == "runs":
                runs_changed = True
            elif coll in WATCHED and doc.get("run_id") == latest:
                # Markouts are not pushed: the strategy view refetches them with equity.
                events.append((WATCHED[coll], _event(coll, doc)))
        if runs_changed and latest is not None:
            info = self.reader.run_info(latest)
            if info is not None:
                events.insert(0, ("run", info.model_dump()))
        return events

    # -- subscribers ----------------------------------------------------------------------------
    async def stream(self, is_disconnected: Any) -> AsyncIterator[str]:
        queue: asyncio.Queue[tuple[int, str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield f"retry: 2000\nevent: hello\ndata: {json.dumps({'seq': self.seq, 'run_id': self.reader.latest_run_id()})}\n\n"
            while True:
                try:
                    seq, name, data = await asyncio.wait_for(queue.get(), PING_S)
                except TimeoutError:
                    if await is_disconnected():
                        return
                    yield ": ping\n\n"
                    continue
                if seq < 0:
                    return
                yield f"id: {seq}\nevent: {name}\ndata: {json.dumps(data, default=str)}\n\n"
        finally:
            self._subscribers.discard(queue)


def _event(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    if kind == "fills":
        return DashboardReader.fill(doc).model_dump()
    if kind == "equity":
        return {
            "strategy": doc["strategy"],
            "t": int(doc["ts_ns"]) // 1_000_000,
            "y": float(doc["equity"]),
            "qty": float(doc.get("qty") or 0.0),
        }
    if kind == "risk_events":
        return risk_event(doc).model_dump()
    return {  # predictions
        "ts_ns": int(doc["ts_ns"]),
        "base_price": doc.get("base_price"),
        "predicted_price": doc.get("predicted_price"),
        "log_returns": doc.get("log_returns"),
        "target_ts_ns": doc.get("target_ts_ns"),
        "model_version": doc.get("model_version"),
    }
