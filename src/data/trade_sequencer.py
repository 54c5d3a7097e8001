"""Trades from successive connections of a live feed → one stream in exchange-time order.

Deduplicates by trade id (the last ``remember_ids`` ids), drops trades older than what was
already delivered, holds a recovering connection's trades until the gap's backfill is merged in
(or until the feed stops waiting for it: :meth:`release`), and reports each gap as a
:class:`FeedGap`. A backfill that comes back after the live trades were released is merged as far
as time order allows; what it found older than the stream's last trade is reported as ``missed``.
Runs on the event loop only (not thread-safe)."""

from __future__ import annotations

import collections
import logging

from cryptoarena.data.feed import FeedGap
from cryptoarena.data.records import Trade

logger = logging.getLogger(__name__)


class TradeSequencer:
    def __init__(self, remember_ids: int, stats: collections.Counter[str]) -> None:
        self.remember_ids = remember_ids
        self.stats = stats  # shared with the feed: duplicates, late, held, delivered
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
            self.stats["held"] += len(trades)
            return []
        return self.accept(trades)

    def backfill(
        self, gen: int, recovered: list[Trade], start_ns: int, end_ns: int, reason: str
    ) -> list[Trade]:
        """Merge the gap's recovered trades (with connection ``gen``'s held live trades, if still
        held) and report the gap. ``recovered`` counts only trades the backfill alone brought."""
        live = self._held if self._holding == gen else []
        live_ids = {t.trade_id for t in live}
        last_ts = self._last_ts
        reaches_back = bool(recovered) and (
            any(t.trade_id in self._seen for t in recovered)
            or (last_ts is not None and min(t.ts for t in recovered) <= last_ts)
        )
        missed = sum(
            1
            for t in recovered
            if last_ts is not None
            and t.ts < last_ts
            and t.trade_id not in self._seen
            and t.trade_id not in live_ids
        )
        if self._holding == gen:
            self._holding, self._held = None, []
        # Stable sort: a trade both backfilled and received live is taken from the backfill,
        # but counted as live (it did not need the backfill).
        out = self.accept(sorted([*recovered, *live], key=lambda t: t.ts))
        self.gaps.append(
            FeedGap(
                start_ns,
                end_ns,
                reason,
                recovered=sum(1 for t in out if t.trade_id not in live_ids),
                complete=reaches_back and missed == 0,
                missed=missed,
            )
        )
        if missed:
            logger.warning(
                "bybit feed: the backfill came too late for %d trades of the gap", missed
            )
        logger.info("bybit feed: gap %s", self.gaps[-1])
        return out

    def release(self, gen: int) -> list[Trade]:
        """Deliver connection ``gen``'s held trades now (its backfill is late or will not come)."""
        if self._holding != gen:
            return []
        held = sorted(self._held, key=lambda t: t.ts)
        self._holding, self._held = None, []
        return self.accept(held)

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
