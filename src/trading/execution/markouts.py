"""The engine's markout tracker: every fill's 1, 5 and 15 s markout, journaled as ``markouts``.

Fed the same market events and fills the engine sees (the trade batches, every fill booked by
the order ledger), it keeps each fill until its last horizon passes, then journals one record:

``{exec_id, client_id, strategy, side, is_maker, price, qty, fill_ts_ns, horizons_s,
ref_px, ref, bps, missing, ts_ns}`` where ``ref_px[k]`` is the reference price at
``fill_ts_ns + horizons_s[k]``, ``ref[k]`` says which ("mid": the recorded book's mid; "trade":
the last trade price at or before that instant) and ``bps[k]`` the markout (the rule of
:mod:`cryptoarena.trading.results.markouts`: positive is good for the filled side). A horizon
the tracker cannot know is ``None`` and ``missing`` says why: the run ended before it, no trade
was seen at or before it (a restart's gap in a live feed), or the fill reached the engine after
the horizon had passed.

Memory: only fills of the last 15 s (of market time) are held. A horizon resolves when the
first trade after it arrives, so the reference is exactly the last trade at or before it.

Restart: :meth:`MarkoutTracker.restore` takes the run's fills of the last ``max horizon + 5 s``
before the checkpoint that have no ``markouts`` record yet (the journal writes in order: an
older fill's record precedes the checkpoint's events). A resumed replay replays its ticks from
the start, so they resolve exactly as in the uninterrupted run; a live feed does not replay the
past, so horizons that passed while the worker was down are ``None`` ("not observed").
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptoarena.data.records import NS_PER_S, Trade
from cryptoarena.trading.exchange.models import Fill, Side
from cryptoarena.trading.results.markouts import HORIZONS_S, signed_bps

if TYPE_CHECKING:  # the engine package imports this module: no cycle at run time
    from cryptoarena.data.book_replay import BookTape
    from cryptoarena.trading.engine.ports import JournalFind

logger = logging.getLogger(__name__)

Record = Callable[[str, dict[str, Any]], str]
KIND = "markouts"
MID, TRADE = "mid", "trade"
ENDED = "the run ended before the horizon"
UNSEEN = "no trade seen at or before the horizon (a restart's gap)"
LATE = "the fill reached the engine after the horizon"
NO_TICKS = "a bar backtest has no prices inside its bars"
RESTORE_MARGIN_NS = 5 * NS_PER_S


@dataclass(frozen=True)
class MarkoutPrices:
    """Where a run's markouts read their reference price, declared by whoever composes the run:
    ``book`` (a replay's recorded L2 book: its mid, where it has a snapshot) and whether trades
    inside the horizons are seen at all (a bar backtest sees none: every horizon is None)."""

    book: BookTape | None = None
    ticks: bool = True


@dataclass
class _Pending:
    doc: dict[str, Any]
    side: int
    price: float
    left: int  # horizons still to resolve
    missing: set[str] = field(default_factory=set)


class MarkoutTracker:
    def __init__(
        self,
        record: Record,
        prices: MarkoutPrices | None = None,
        horizons_s: Sequence[int] = HORIZONS_S,
    ) -> None:
        self._record = record
        self.prices = prices or MarkoutPrices()
        self.horizons_s = tuple(horizons_s)
        self._offsets = [h * NS_PER_S for h in self.horizons_s]
        # (due ns, order, horizon index, fill): the earliest horizon first.
        self._due: list[tuple[int, int, int, _Pending]] = []
        self._order = 0
        self._last_px: float | None = None
        self._last_ns: int | None = None
        self.pending = 0  # fills waiting for a horizon
        self.peak_pending = 0  # the most fills held at once (the bound's witness in tests)

    # -- inputs ---------------------------------------------------------------------------
    def on_fill(self, strategy: str, fill: Fill) -> None:
        doc = {
            "exec_id": fill.exec_id,
            "client_id": fill.client_id,
            "strategy": strategy,
            "side": fill.side.value,
            "is_maker": fill.is_maker,
            "price": float(fill.price),
            "qty": float(fill.qty),
            "fill_ts_ns": fill.ts_ns,
        }
        self.add(doc)

    def add(self, doc: dict[str, Any]) -> None:
        """Wait for the horizons of a fill described by ``doc`` (a fill's own fields)."""
        n = len(self.horizons_s)
        doc = {
            **doc,
            "horizons_s": list(self.horizons_s),
            "ref_px": [None] * n,
            "ref": [None] * n,
            "bps": [None] * n,
        }
        side = 1 if doc["side"] == Side.BUY.value else -1
        fill = _Pending(doc, side, float(doc["price"]), n)
        if not self.prices.ticks:
            fill.missing.add(NO_TICKS)
            self._finish(fill)
            return
        ts = int(doc["fill_ts_ns"])
        self.pending += 1
        self.peak_pending = max(self.peak_pending, self.pending)
        for k, offset in enumerate(self._offsets):
            due = ts + offset
            if self._last_ns is not None and due < self._last_ns:
                self._resolve(fill, k, None, LATE)  # the trade at the horizon is gone
                continue
            self._order += 1
            heapq.heappush(self._due, (due, self._order, k, fill))

    def on_trades(self, trades: Sequence[Trade]) -> None:
        """A batch of trades in time order: horizons before a trade resolve at the last trade
        before it (the last one at or before the horizon)."""
        if not trades:
            return
        due = self._due
        if not due or due[0][0] >= trades[-1].ts:
            last = trades[-1]
            self._last_px, self._last_ns = last.price, last.ts
            return
        for t in trades:
            while due and due[0][0] < t.ts:
                self._pop_resolve()
            self._last_px, self._last_ns = t.price, t.ts

    def close(self) -> None:
        """The run's end: horizons at the last trade resolve; the rest are None ("ended")."""
        while self._due:
            at, _, k, fill = heapq.heappop(self._due)
            if self._last_ns is not None and at <= self._last_ns:
                self._resolve_at(fill, k, at)
            else:
                self._resolve(fill, k, None, ENDED)

    def drop(self) -> int:
        """A run that stops to be resumed: forget what is pending (the restart takes it over
        from the journal); returns how many fills."""
        n, self.pending = self.pending, 0
        self._due.clear()
        return n

    def restore(self, journal: JournalFind, run_id: str, checkpoint_ns: int) -> int:
        """Take over the fills just before ``checkpoint_ns`` whose markouts were not journaled
        (see the module doc); returns how many."""
        if not self.prices.ticks:
            return 0
        since = checkpoint_ns - self._offsets[-1] - RESTORE_MARGIN_NS
        window = {"run_id": run_id, "ts_ns": {"$gte": since}}
        done = {
            str(d.get("exec_id")) for d in journal.find(KIND, window, projection={"exec_id": 1})
        }
        fills = journal.find("fills", window, sort=[("ts_ns", 1), ("seq", 1)])
        taken = 0
        for f in fills:
            if str(f["exec_id"]) in done:
                continue
            self.add(
                {
                    "exec_id": f["exec_id"],
                    "client_id": f.get("client_id"),
                    "strategy": f["strategy"],
                    "side": f["side"],
                    "is_maker": f.get("is_maker"),
                    "price": float(f["price"]),
                    "qty": float(f["qty"]),
                    "fill_ts_ns": int(f["ts_ns"]),
                }
            )
            taken += 1
        return taken

    # -- resolution -----------------------------------------------------------------------
    def _pop_resolve(self) -> None:
        at, _, k, fill = heapq.heappop(self._due)
        self._resolve_at(fill, k, at)

    def _resolve_at(self, fill: _Pending, k: int, at: int) -> None:
        book = self.prices.book
        mid = book.mid(at) if book is not None else None
        if mid is not None:
            self._resolve(fill, k, (mid, MID), None)
        elif self._last_px is not None:
            self._resolve(fill, k, (self._last_px, TRADE), None)
        else:
            self._resolve(fill, k, None, UNSEEN)

    def _resolve(
        self, fill: _Pending, k: int, ref: tuple[float, str] | None, missing: str | None
    ) -> None:
        if ref is not None:
            px, kind = ref
            fill.doc["ref_px"][k] = px
            fill.doc["ref"][k] = kind
            fill.doc["bps"][k] = signed_bps(float(fill.side), px, fill.price)
        if missing is not None:
            fill.missing.add(missing)
        fill.left -= 1
        if fill.left == 0:
            self.pending -= 1
            self._finish(fill)

    def _finish(self, fill: _Pending) -> None:
        doc = fill.doc
        doc["missing"] = "; ".join(sorted(fill.missing)) or None
        # Filed at the fill's time: the record describes that fill (the index's window).
        doc["ts_ns"] = doc["fill_ts_ns"]
        self._record(KIND, doc)
