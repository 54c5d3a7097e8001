"""The live order book: Bybit ``orderbook.{depth}.{symbol}`` messages → a local book → top-N
snapshots once per second of exchange time → per-second book columns next to the 1 s bars.

One code path for live and replay: :class:`BybitBookTracker` is what the feed runs on every
message, and what :func:`replay_book_messages` runs over recorded messages.

Sequence rules (reference §3.13): a ``snapshot`` (or any message with ``u == 1``, a service
restart) resets the book; a ``delta`` must carry ``u`` = previous ``u`` + 1. On a gap the book is
dropped (no state is published from it) and the tracker waits for the next snapshot; the feed
asks for one by subscribing again. Exchange time is ``cts`` (matching engine), else ``ts``.

A snapshot's book columns (``BOOK_COLUMNS``, the inputs of the book features in
:mod:`cryptoarena.model.features`): best ``bid``/``ask``, sizes at the best level
``bid_sz1``/``ask_sz1``, and sizes summed over the best five levels ``bid_sz5``/``ask_sz5``.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.data.lake import Lake
from cryptoarena.data.records import NS_PER_S, Bar

logger = logging.getLogger(__name__)

# Same names and order as cryptoarena.model.features.BOOK_COLUMNS (a test checks).
BOOK_COLUMNS: tuple[str, ...] = ("bid", "ask", "bid_sz1", "ask_sz1", "bid_sz5", "ask_sz5")
DEPTH_LEVELS = 5  # levels summed into bid_sz5/ask_sz5
NS_PER_MS = 1_000_000


class BookMessageError(ValueError):
    """An orderbook message that cannot be read (missing field, bad number, wrong type)."""


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The top ``len(bids)``/``len(asks)`` levels of the book at exchange time ``ts`` (ns)."""

    ts: int  # ns since epoch, UTC, exchange time of the last update applied
    u: int  # Bybit update id of that update
    seq: int  # Bybit cross sequence
    bids: tuple[tuple[float, float], ...]  # (price, size), best (highest) first
    asks: tuple[tuple[float, float], ...]  # (price, size), best (lowest) first
    symbol: str = "BTCUSDT"

    def columns(self) -> tuple[float, float, float, float, float, float]:
        """The book columns (``BOOK_COLUMNS`` order); NaN where a side is empty."""
        return book_columns(self.bids, self.asks)


def book_columns(
    bids: Iterable[tuple[float, float]], asks: Iterable[tuple[float, float]]
) -> tuple[float, float, float, float, float, float]:
    b = list(bids)[:DEPTH_LEVELS]
    a = list(asks)[:DEPTH_LEVELS]
    nan = math.nan
    return (
        b[0][0] if b else nan,
        a[0][0] if a else nan,
        b[0][1] if b else nan,
        a[0][1] if a else nan,
        math.fsum(s for _, s in b) if b else nan,
        math.fsum(s for _, s in a) if a else nan,
    )


class LocalBook:
    """One symbol's book from snapshot + delta messages, with the ``u`` sequence check."""

    def __init__(self, symbol: str, stats: collections.Counter[str] | None = None) -> None:
        self.symbol = symbol
        self.stats = stats if stats is not None else collections.Counter()
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.u: int | None = None  # None: no valid book (waiting for a snapshot)
        self.seq = 0
        self.ts = 0

    @property
    def valid(self) -> bool:
        return self.u is not None

    def reset(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.u = None

    def apply(self, message: Mapping[str, Any]) -> bool:
        """Apply one message; True when the book is valid afterwards. A gap drops the book
        (``stats['book_gaps']``); deltas before the next snapshot are ignored."""
        kind, data, u, ts = _envelope(message)
        if kind == "snapshot" or u == 1:
            self.reset()
            _load(self.bids, data.get("b"))
            _load(self.asks, data.get("a"))
            self.stats["book_snapshots"] += 1
        elif self.u is None:
            self.stats["book_deltas_waiting"] += 1
            return False
        elif u == self.u:  # level-1 books resend an unchanged book with the same u
            return True
        elif u != self.u + 1:
            logger.warning("bybit book %s: u %d after %d; resync", self.symbol, u, self.u)
            self.stats["book_gaps"] += 1
            self.reset()
            return False
        else:
            _load(self.bids, data.get("b"))
            _load(self.asks, data.get("a"))
            self.stats["book_deltas"] += 1
        self.u = u
        self.seq = _int(data.get("seq", 0), "seq")
        self.ts = ts
        return True

    def snapshot(self, levels: int) -> BookSnapshot:
        bids = sorted(self.bids.items(), key=lambda lv: -lv[0])[:levels]
        asks = sorted(self.asks.items())[:levels]
        return BookSnapshot(self.ts, self.u or 0, self.seq, tuple(bids), tuple(asks), self.symbol)


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BookMessageError(f"orderbook {name} is not an integer: {value!r}") from exc


def _envelope(message: Mapping[str, Any]) -> tuple[str, Mapping[str, Any], int, int]:
    kind = message.get("type")
    data = message.get("data")
    if kind not in ("snapshot", "delta") or not isinstance(data, Mapping):
        raise BookMessageError(f"not an orderbook snapshot/delta: type={kind!r}")
    stamp = message.get("cts") or message.get("ts")
    return kind, data, _int(data.get("u"), "u"), _int(stamp, "cts/ts") * NS_PER_MS


def _load(side: dict[float, float], levels: Any) -> None:
    """Insert, replace or (size 0) delete levels. Parsed fully before the book changes."""
    try:
        parsed = [(float(price), float(size)) for price, size in levels or ()]
    except (TypeError, ValueError) as exc:
        raise BookMessageError(f"bad orderbook level in {levels!r:.80}") from exc
    if any(not (math.isfinite(p) and math.isfinite(s) and p > 0 and s >= 0) for p, s in parsed):
        raise BookMessageError(f"bad orderbook level in {levels!r:.80}")
    for price, size in parsed:
        if size == 0:
            side.pop(price, None)
        else:
            side[price] = size


class BookSampler:
    """The last valid book state of each exchange second, published when the second is over
    (the first update of a later second closes it). A state is taken at most once per second's
    last update, so its cost does not grow with the message rate."""

    def __init__(self, levels: int, emit: Callable[[BookSnapshot], None]) -> None:
        self.levels = levels
        self._emit = emit
        self._pending: BookSnapshot | None = None

    def updated(self, book: LocalBook) -> None:
        """Call after each message applied; ``book.valid`` says whether there is a state."""
        pending = self._pending
        if pending is not None and book.ts // NS_PER_S > pending.ts // NS_PER_S:
            self.flush()
        if book.valid:
            self._pending = book.snapshot(self.levels)

    def flush(self) -> None:
        if self._pending is not None:
            snap, self._pending = self._pending, None
            self._emit(snap)


class BybitBookTracker:
    """Book + sampler for one symbol: ``on_message(msg)`` per orderbook message; snapshots go
    to ``emit``. Returns False after a message that left no valid book (the caller resyncs)."""

    def __init__(
        self,
        symbol: str,
        levels: int,
        emit: Callable[[BookSnapshot], None],
        stats: collections.Counter[str] | None = None,
    ) -> None:
        self.book = LocalBook(symbol, stats)
        self.sampler = BookSampler(levels, emit)

    def on_message(self, message: Mapping[str, Any]) -> bool:
        was_valid = self.book.valid
        ok = self.book.apply(message)
        if not ok and was_valid:  # the state before the gap was real: publish it
            self.sampler.flush()
        self.sampler.updated(self.book)
        return ok

    def restart(self) -> None:
        """A new connection: publish what we had, then wait for the new subscription's snapshot."""
        self.sampler.flush()
        self.book.reset()


def replay_book_messages(
    messages: Iterable[Mapping[str, Any]], symbol: str, levels: int
) -> list[BookSnapshot]:
    """Recorded orderbook messages → the per-second snapshots the live feed would publish."""
    out: list[BookSnapshot] = []
    tracker = BybitBookTracker(symbol, levels, out.append)
    for message in messages:
        tracker.on_message(message)
    tracker.sampler.flush()
    return out


# ---- snapshots as a table (the lake's ``book`` dataset) ------------------------------------
def book_frame_columns(levels: int) -> list[str]:
    cols = ["ts", "u", "seq"]
    for side in ("bid", "ask"):
        cols += [f"{side}_px_{i}" for i in range(1, levels + 1)]
        cols += [f"{side}_sz_{i}" for i in range(1, levels + 1)]
    return cols


def book_frame(snapshots: list[BookSnapshot], levels: int) -> pd.DataFrame:
    """Snapshots as one row each: ``ts``/``u``/``seq`` (int64) and ``{bid,ask}_{px,sz}_{1..N}``
    (float64, NaN past the side's depth)."""
    n = len(snapshots)
    data: dict[str, np.ndarray] = {
        "ts": np.fromiter((s.ts for s in snapshots), np.int64, n),
        "u": np.fromiter((s.u for s in snapshots), np.int64, n),
        "seq": np.fromiter((s.seq for s in snapshots), np.int64, n),
    }
    for side in ("bid", "ask"):
        px = np.full((n, levels), np.nan)
        sz = np.full((n, levels), np.nan)
        for row, snap in enumerate(snapshots):
            lv = (snap.bids if side == "bid" else snap.asks)[:levels]
            if lv:
                px[row, : len(lv)] = [p for p, _ in lv]
                sz[row, : len(lv)] = [s for _, s in lv]
        for i in range(levels):
            data[f"{side}_px_{i + 1}"] = px[:, i]
        for i in range(levels):
            data[f"{side}_sz_{i + 1}"] = sz[:, i]
    return pd.DataFrame(data)


def frame_levels(frame: pd.DataFrame) -> int:
    return sum(1 for c in frame.columns if c.startswith("bid_px_"))


def book_states(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A book table → (exchange ms, rows (m, 6) in ``BOOK_COLUMNS`` order): the offline input of
    ``cryptoarena.model.book.per_second``."""
    levels = min(DEPTH_LEVELS, frame_levels(frame))
    if levels == 0:
        raise ValueError("book table has no levels")
    rows = np.empty((len(frame), len(BOOK_COLUMNS)))
    for k, side in enumerate(("bid", "ask")):
        rows[:, k] = frame[f"{side}_px_1"].to_numpy(np.float64)
        rows[:, 2 + k] = frame[f"{side}_sz_1"].to_numpy(np.float64)
        sizes = np.stack(
            [frame[f"{side}_sz_{i}"].to_numpy(np.float64) for i in range(1, levels + 1)]
        )
        # Same sum as BookSnapshot.columns (fsum over the known levels): identical bits.
        rows[:, 4 + k] = [
            math.fsum(x for x in col if not math.isnan(x)) if not math.isnan(col[0]) else math.nan
            for col in sizes.T
        ]
    return frame["ts"].to_numpy(np.int64) // NS_PER_MS, rows


def lake_book_bars(
    lake: Lake, symbol: str, start_ns: int | None = None, end_ns: int | None = None
) -> pd.DataFrame:
    """The offline path: the lake's 1 s bars with the book columns of its ``book`` dataset (last
    state of each second, forward-filled; close = mid where quoted), through the same
    ``model.book.per_second``/``attach_book`` the recorded-day loaders use for training."""
    from cryptoarena.model.book import attach_book, per_second  # model builds on data

    bars = lake.read_bars(symbol, start_ns, end_ns)
    if bars.empty:
        return bars
    book = lake.read_book(symbol, None, end_ns)  # earlier states forward-fill into the window
    first_s = int(bars["ts"].iloc[0]) // NS_PER_S
    if book.empty or "bid_px_1" not in book:
        ts_ms, rows = np.empty(0, np.int64), np.empty((0, len(BOOK_COLUMNS)))
    else:
        ts_ms, rows = book_states(book)
    # States before the window: the last one stands for the window's first second.
    before = ts_ms < first_s * 1000
    if before.any():
        last = int(np.flatnonzero(before)[-1])
        ts_ms = np.concatenate([[first_s * 1000], ts_ms[~before]])
        rows = np.concatenate([rows[last : last + 1], rows[~before]])
    return attach_book(bars, per_second(ts_ms, rows, first_s, len(bars)))


# ---- live: 1 s bars with the book columns --------------------------------------------------
class LiveBookBars:
    """Joins the live 1 s bars with the book snapshots: each bar gets the last book state known
    by the end of its second (forward-filled; NaN before the first one). With ``mid_close`` the
    close becomes the mid and high/low widen to contain it, as the offline loader does, so a book
    model sees the same bars live as in training."""

    def __init__(self, *, mid_close: bool = True) -> None:
        self.mid_close = mid_close
        self._snapshots: collections.deque[BookSnapshot] = collections.deque()
        self._state: tuple[float, ...] = (math.nan,) * len(BOOK_COLUMNS)

    def add(self, snapshot: BookSnapshot) -> None:
        self._snapshots.append(snapshot)

    def bar(self, bar: Bar) -> dict[str, float | int]:
        """The bar as a dict of bar and book columns (call in bar order)."""
        end = bar.ts + NS_PER_S
        while self._snapshots and self._snapshots[0].ts < end:
            self._state = self._snapshots.popleft().columns()
        out: dict[str, float | int] = {
            "ts": bar.ts,
            "open": bar.open,
            "high": bar.high,
            "low": bar.low,
            "close": bar.close,
            "volume": bar.volume,
            "vwap": bar.vwap,
            "trades": bar.trades,
            "buy_volume": bar.buy_volume,
            "sell_volume": bar.sell_volume,
        }
        out.update(zip(BOOK_COLUMNS, self._state, strict=True))
        if self.mid_close:
            mid = (self._state[0] + self._state[1]) / 2
            if math.isfinite(mid):
                out["close"] = mid
                out["high"] = max(bar.high, mid)
                out["low"] = min(bar.low, mid)
        return out
