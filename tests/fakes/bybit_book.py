"""The exchange side of Bybit's ``orderbook.{depth}.{symbol}`` stream, in the real wire format
(shared/reference/bybit-v5.md §3.13): a snapshot on subscription, then one delta per change with
``u`` increasing by one, ``seq`` (cross sequence) increasing, ``ts`` and ``cts`` in ms.

:class:`ExchangeBook` is one symbol's book on the fake exchange; :func:`random_book_changes`
makes a seeded, realistic-looking sequence of changes (a random-walk mid, levels added, resized
and deleted, several updates per second) for tests that need many messages.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.bybit_wire import now_ms, num_text

Level = tuple[float, float]  # (price, size); size 0 deletes


@dataclass
class ExchangeBook:
    symbol: str = "BTCUSDT"
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    u: int = 1000
    seq: int = 7_961_638_000
    last_ms: int = 0

    def _stamp(self, ts_ms: int | None) -> int:
        self.last_ms = now_ms() if ts_ms is None else ts_ms
        return self.last_ms

    def snapshot(self, depth: int, ts_ms: int | None = None) -> dict[str, Any]:
        """The current top ``depth`` levels as a snapshot message (same ``u`` as the last delta)."""
        ms = self._stamp(ts_ms if ts_ms is not None else (self.last_ms or None))
        bids = sorted(self.bids.items(), key=lambda lv: -lv[0])[:depth]
        asks = sorted(self.asks.items())[:depth]
        return self._message("snapshot", depth, bids, asks, ms)

    def change(
        self, depth: int, bids: list[Level], asks: list[Level], ts_ms: int | None = None
    ) -> dict[str, Any]:
        """Apply a change on the exchange; the delta message that reports it (next ``u``)."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.u += 1
        self.seq += 3
        return self._message("delta", depth, bids, asks, self._stamp(ts_ms))

    def restart(self, depth: int, ts_ms: int | None = None) -> dict[str, Any]:
        """The book service restarts: the whole book is sent again with ``u == 1`` — as a
        ``delta``, so only the client's ``u == 1`` rule (not the message type) resets it."""
        self.u = 1
        self.seq += 3
        bids = sorted(self.bids.items(), key=lambda lv: -lv[0])[:depth]
        asks = sorted(self.asks.items())[:depth]
        return self._message("delta", depth, bids, asks, self._stamp(ts_ms))

    def _message(
        self, kind: str, depth: int, bids: list[Level], asks: list[Level], ms: int
    ) -> dict[str, Any]:
        return {
            "topic": f"orderbook.{depth}.{self.symbol}",
            "type": kind,
            "ts": ms + 2,
            "data": {
                "s": self.symbol,
                "b": [[num_text(p), num_text(s)] for p, s in bids],
                "a": [[num_text(p), num_text(s)] for p, s in asks],
                "u": self.u,
                "seq": self.seq,
            },
            "cts": ms,
        }


def random_book_changes(
    seed: int, seconds: int, start_ms: int, *, per_second: int = 5, levels: int = 30
) -> Iterator[tuple[int, list[Level], list[Level]]]:
    """(ts_ms, bid changes, ask changes): first the full initial book, then updates spread over
    ``seconds`` seconds (some seconds empty), prices on a 0.1 tick around a random-walk mid."""
    rng = random.Random(seed)
    mid = 65_000.0
    bids = {round(mid - 0.1 * (i + 1), 1): round(rng.uniform(0.001, 5), 3) for i in range(levels)}
    asks = {round(mid + 0.1 * (i + 1), 1): round(rng.uniform(0.001, 5), 3) for i in range(levels)}
    yield start_ms, list(bids.items()), list(asks.items())
    for sec in range(seconds):
        if rng.random() < 0.1:  # a quiet second: no update
            continue
        stamps = sorted(rng.randrange(1000) for _ in range(rng.randint(1, per_second)))
        for offset in stamps:
            ts = start_ms + sec * 1000 + offset
            side, book = (bids, "b") if rng.random() < 0.5 else (asks, "a")
            best = max(side) if book == "b" else min(side)
            roll = rng.random()
            if roll < 0.3 and len(side) > 5:  # the best level is taken out; one joins far away
                del side[best]
                worst = min(side) if book == "b" else max(side)
                far = round(worst - 0.1 if book == "b" else worst + 0.1, 1)
                side[far] = round(rng.uniform(0.001, 5), 3)
                change = [(best, 0.0), (far, side[far])]
            elif roll < 0.5:  # a new best level inside the spread, if there is room
                step = 0.1 if book == "b" else -0.1
                price = round(best + step, 1)
                other = min(asks) if book == "b" else max(bids)
                if (book == "b" and price >= other) or (book == "a" and price <= other):
                    price = best
                side[price] = round(rng.uniform(0.001, 3), 3)
                change = [(price, side[price])]
                if len(side) > levels:  # the book keeps its depth: the farthest level leaves
                    worst = min(side) if book == "b" else max(side)
                    del side[worst]
                    change.append((worst, 0.0))
            else:  # resize one of the best ten levels
                price = sorted(side, reverse=book == "b")[rng.randrange(min(10, len(side)))]
                side[price] = round(rng.uniform(0.001, 5), 3)
                change = [(price, side[price])]
            yield (ts, change, []) if book == "b" else (ts, [], change)
