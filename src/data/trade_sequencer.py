"""Trades from successive connections of a live feed → one stream in exchange-time order.

Deduplicates by trade id (the last ``remember_ids`` ids), drops trades older than what was
already delivered, holds a recovering connection's trades until the gap's backfill is merged in,
and reports each gap as a :class:`FeedGap`. Runs on the event loop only (not thread-safe)."""

from __future__ import annotations

import collections
import logging

from cryptoarena.data.feed import FeedGap
from cryptoarena.data.records import Trade

logger = logging.getLogger(__name__)


class TradeSequencer:
    def __init__(self, remember_ids: int, stats: collections.Counter[str]) -> None:
        self.remember_ids = remember_ids
        self.stats = stats  # shared with the feed: duplicates, late, delivered
        self.gaps: list[FeedGap] = []
        self._seen: set[str] = set()
        self._seen_order: collections.deque[str] = collections.deque()
        self._last_ts: int | None = None
        self._holding: int | None = None  # connection generation whose trades wait for backfill
        self._held: list[Trade] = []

    def hold(self, gen: int) -> None:
        """Keep connection ``gen``'s trades back until :meth:`backfill` (or :meth:`release`)."""
        self._holding, self._held = gen, []

    def trades(self, gen: int, trades: list[Trade]) -> list[Trade]:
        if self._holding == gen:
            self._held.extend(trades)
            return []
        return self.accept(trades)

    def backfill(
        self, recovered: list[Trade], start_ns: int, end_ns: int, reason: str
    ) -> list[Trade]:
        """Merge the recovered trades with what arrived meanwhile and report the gap
        (``complete`` when the backfill reached back to trades seen before it)."""
        complete = bool(recovered) and (
            any(t.trade_id in self._seen for t in recovered)
            or (self._last_ts is not None and recovered[0].ts <= self._last_ts)
        )
        before = self.stats["delivered"]
        out = self.release(recovered)
        self.gaps.append(
            FeedGap(
                start_ns,
                end_ns,
                reason,
                recovered=self.stats["delivered"] - before,
                complete=complete,
            )
        )
        logger.info("bybit feed: gap %s", self.gaps[-1])
        return out

    def release(self, recovered: list[Trade]) -> list[Trade]:
        merged = sorted([*recovered, *self._held], key=lambda t: t.ts)
        self._holding, self._held = None, []
        return self.accept(merged)

    def accept(self, trades: list[Trade]) -> list[Trade]:
        out = []
        for trade in trades:
            if trade.trade_id in self._seen:
                self.stats["duplicates"] += 1
                continue
            if self._last_ts is not None and trade.ts < self._last_ts:
                self.stats["late"] += 1  # older than what was delivered: cannot keep time order
                continue
            self._seen.add(trade.trade_id)
            self._seen_order.append(trade.trade_id)
            if len(self._seen_order) > self.remember_ids:
                self._seen.discard(self._seen_order.popleft())
            self._last_ts = trade.ts
            out.append(trade)
        self.stats["delivered"] += len(out)
        return out
