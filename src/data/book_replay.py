"""A recorded order book, replayed next to its trades: what a simulated venue needs to know
about the book at any moment of a replay (docs/exchange.md, "Queue position").

- :class:`BookTape` (L2): top-N snapshots by time. ``at(ts)`` is the last snapshot at or
  before ``ts``; a venue reads the displayed size at a price (queue ahead of an order joining
  there), the levels a taker order walks, and the mid price (markouts).
- :class:`OrderEvents` (L3): every order created, changed and deleted, in recorded order, with
  the position of each trade message in that order (so a venue replays exactly the events that
  came before a trade).

Sources: the Bitstamp feed log (``order_book`` snapshots and ``order_*`` events: both), and the
collector's lake (``book`` dataset: L2 snapshots from Bybit ``orderbook.50``).
"""

from __future__ import annotations

import bz2
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from cryptoarena.data.records import LoadReport

# pandas and the lake (pyarrow, ~100 MB) only where a lake's book is read: the report's fill notes
# (trading.exchange.queues) import this module, and the dashboard's leaderboard imports them.
if TYPE_CHECKING:
    import pandas as pd
    from cryptoarena.data.lake import Lake

logger = logging.getLogger(__name__)

BID, ASK = 1, -1  # an order's side in the book (a bid is a resting buy)
CREATED, CHANGED, DELETED = 0, 1, 2
_KINDS = {"order_created": CREATED, "order_changed": CHANGED, "order_deleted": DELETED}
NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class BookTape:
    """Top-N book snapshots by exchange time: ``px``/``sz`` arrays of shape (n, levels) per
    side, best first, NaN past a side's depth."""

    ts: np.ndarray  # int64 ns, non-decreasing
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray

    def __post_init__(self) -> None:
        if len(self.ts) and bool(np.any(np.diff(self.ts) < 0)):
            raise ValueError("book snapshots must be sorted by time")

    def __len__(self) -> int:
        return len(self.ts)

    def row(self, ts_ns: int) -> int:
        """Index of the last snapshot at or before ``ts_ns`` (-1: none yet)."""
        return int(np.searchsorted(self.ts, ts_ns, side="right")) - 1

    def levels(self, side: int, ts_ns: int) -> list[tuple[float, float]]:
        """The (price, size) levels of one side (``BID``/``ASK``), best first, as of ``ts_ns``."""
        r = self.row(ts_ns)
        if r < 0:
            return []
        px, sz = (self.bid_px, self.bid_sz) if side == BID else (self.ask_px, self.ask_sz)
        return [
            (float(p), float(s))
            for p, s in zip(px[r], sz[r], strict=True)
            if not np.isnan(p) and s > 0
        ]

    def displayed(self, side: int, price: float, ts_ns: int) -> float | None:
        """Size shown at ``price`` on ``side`` as of ``ts_ns``: 0.0 when the price is inside the
        shown range (or better than the best) but no level is there; None when nothing is known
        (no snapshot yet, or the price lies beyond the deepest level shown)."""
        levels = self.levels(side, ts_ns)
        if not levels:
            return None
        for p, s in levels:
            if p == price:
                return s
        worst = levels[-1][0]
        beyond = price < worst if side == BID else price > worst
        return None if beyond else 0.0

    def mid(self, ts_ns: int) -> float | None:
        r = self.row(ts_ns)
        if r < 0:
            return None
        bid, ask = float(self.bid_px[r, 0]), float(self.ask_px[r, 0])
        return None if np.isnan(bid) or np.isnan(ask) else (bid + ask) / 2


@dataclass(frozen=True)
class OrderEvents:
    """Market-by-order events in recorded order (``pos`` is the order in the recording)."""

    ts: np.ndarray  # int64 ns
    pos: np.ndarray  # int64, increasing
    kind: np.ndarray  # int8: CREATED / CHANGED / DELETED
    oid: np.ndarray  # int64 order id
    side: np.ndarray  # int8: BID / ASK
    price: np.ndarray  # float64
    amount: np.ndarray  # float64: what is still open after the event
    trade_pos: dict[str, int] = field(default_factory=dict)  # trade id → position

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True)
class RecordedMarket:
    """What a replay knows of the book: L2 snapshots, L3 events, either or both (or neither:
    the tape only)."""

    name: str
    l2: BookTape | None = None
    l3: OrderEvents | None = None

    @property
    def depth(self) -> str:
        return "L3" if self.l3 is not None else "L2" if self.l2 is not None else "tape"


def _levels(raw: list[list[str]], n: int) -> tuple[list[float], list[float]]:
    px = [float(p) for p, _ in raw[:n]]
    sz = [float(q) for _, q in raw[:n]]
    pad = n - len(px)
    return px + [np.nan] * pad, sz + [np.nan] * pad


def load_bitstamp_market(path: Path | str, levels: int = 20) -> tuple[RecordedMarket, LoadReport]:
    """The Bitstamp feed log's book: its ``order_book`` snapshots (L2, top ``levels``) and its
    ``order_created/changed/deleted`` events (L3), timed by the recorder's clock like its
    trades (:func:`cryptoarena.data.loaders.load_bitstamp_log`). Bad lines are counted."""
    path = Path(path)
    report = LoadReport(str(path))
    snap_ts: list[int] = []
    rows: list[tuple[list[float], list[float], list[float], list[float]]] = []
    ev: list[tuple[int, int, int, int, int, float, float]] = []
    trade_pos: dict[str, int] = {}
    with bz2.open(path, "rt") as stream:
        for lineno, line in enumerate(stream, start=1):
            try:
                ms, kind, payload = line.rstrip("\n").split(" ", 2)
                data = json.loads(payload)
                ts = int(ms) * NS_PER_MS
                if kind == "order_book":
                    bids = _levels(data["bids"], levels)
                    asks = _levels(data["asks"], levels)
                    snap_ts.append(ts)
                    rows.append((*bids, *asks))
                elif kind in _KINDS:
                    side = BID if int(data["order_type"]) == 0 else ASK
                    ev.append((ts, lineno, _KINDS[kind], int(data["id"]), side,
                               float(data["price"]), float(data["amount"])))  # fmt: skip
                elif kind == "trade":
                    trade_pos[str(data["id"])] = lineno
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                report.refuse(1, f"line {lineno}: {exc.__class__.__name__}: {exc}")
    n = len(rows)
    arr = [np.array([r[k] for r in rows], np.float64).reshape(n, levels) for k in range(4)]
    tape = BookTape(np.asarray(snap_ts, np.int64), arr[0], arr[1], arr[2], arr[3])
    cols: list[tuple[float, ...]] = list(zip(*ev, strict=True)) if ev else [()] * 7
    events = OrderEvents(
        ts=np.asarray(cols[0], np.int64),
        pos=np.asarray(cols[1], np.int64),
        kind=np.asarray(cols[2], np.int8),
        oid=np.asarray(cols[3], np.int64),
        side=np.asarray(cols[4], np.int8),
        price=np.asarray(cols[5], np.float64),
        amount=np.asarray(cols[6], np.float64),
        trade_pos=trade_pos,
    )
    report.rows = n + len(ev) + len(trade_pos)
    return RecordedMarket(f"bitstamp {path.name}", tape, events), report


def book_tape(frame: pd.DataFrame) -> BookTape:
    """The lake's book table (``cryptoarena.data.book.book_frame``) as a :class:`BookTape`."""
    from cryptoarena.data.book import frame_levels

    n = frame_levels(frame)
    if n == 0 or frame.empty:
        raise ValueError("the book table has no levels")

    def side(prefix: str, what: str) -> np.ndarray:
        cols = [frame[f"{prefix}_{what}_{i}"].to_numpy(np.float64) for i in range(1, n + 1)]
        return np.stack(cols, axis=1)

    return BookTape(
        frame["ts"].to_numpy(np.int64),
        side("bid", "px"),
        side("bid", "sz"),
        side("ask", "px"),
        side("ask", "sz"),
    )


def lake_market(
    lake: Lake, symbol: str, start_ns: int | None = None, end_ns: int | None = None
) -> RecordedMarket | None:
    """The collector's recorded book for a replay window (L2), or None if it has none."""
    frame = lake.read_book(symbol, None, end_ns)  # earlier states stand for the window's start
    if frame.empty or "bid_px_1" not in frame:
        return None
    if start_ns is not None:
        before = np.flatnonzero(frame["ts"].to_numpy(np.int64) < start_ns)
        if len(before) > 1:
            frame = frame.iloc[int(before[-1]) :].reset_index(drop=True)
    return RecordedMarket(f"lake {symbol} book", book_tape(frame))
