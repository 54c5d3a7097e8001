"""Recorded trades played back as a feed: at real speed, N× faster, or as fast as possible.

Trades are grouped into batches the way an exchange pushes them (all trades within ``batch_ms``
of each other, at most ``max_batch`` per batch). With a :class:`~cryptoarena.clock.SimClock` the
clock is moved to each batch's last trade time before the batch is handed out, so every
component sees exchange time; a backtest is this feed with ``speed=None``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from cryptoarena.clock import SimClock
from cryptoarena.data.feed import FeedCapabilities, FeedGap
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S, TRADE_COLUMNS, Trade

if TYPE_CHECKING:  # a file replay needs no lake (pyarrow's dataset and parquet modules)
    from cryptoarena.data.lake import Lake

logger = logging.getLogger(__name__)

# As fast as possible still hands the event loop back every this many batches.
YIELD_EVERY = 32

# Trades turned into Python lists at a time: enough to keep per-batch slicing cheap, small
# enough that a month-long tape does not hold a Python object per trade.
CHUNK = 65_536

# A frozen dataclass __init__ costs ~2.5 µs per record; writing its slots directly makes the
# same, equal Trade several times faster (a backtest replays every trade of the day).
_new = object.__new__
_SET = tuple(
    getattr(Trade, name).__set__ for name in ("ts", "price", "size", "side", "trade_id", "symbol")
)


def _make_trade(ts: int, price: float, size: float, side: int, trade_id: str, symbol: str) -> Trade:
    s0, s1, s2, s3, s4, s5 = _SET
    trade = _new(Trade)
    s0(trade, ts)
    s1(trade, price)
    s2(trade, size)
    s3(trade, side)
    s4(trade, trade_id)
    s5(trade, symbol)
    return trade


def batch_bounds(ts: np.ndarray, batch_ns: int, max_batch: int) -> np.ndarray:
    """Start offsets of batches: a new batch at each ``batch_ns`` window or every ``max_batch``."""
    if len(ts) == 0:
        return np.empty(0, np.int64)
    window = ts // batch_ns
    starts = np.concatenate(([0], np.flatnonzero(window[1:] != window[:-1]) + 1))
    sizes = np.diff(np.append(starts, len(ts)))
    if sizes.max() <= max_batch:
        return starts
    # Split oversized windows into chunks of max_batch.
    return np.concatenate(
        [np.arange(s, s + n, max_batch) for s, n in zip(starts, sizes, strict=True)]
    )


class ReplayFeed:
    """A :class:`~cryptoarena.data.feed.MarketFeed` over a recorded trade frame."""

    def __init__(
        self,
        trades: pd.DataFrame,
        *,
        symbol: str = "BTCUSDT",
        speed: float | None = None,
        clock: SimClock | None = None,
        batch_ms: int = 100,
        max_batch: int = 1024,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(
                f"speed must be positive (or None for as fast as possible), got {speed}"
            )
        if batch_ms <= 0 or max_batch <= 0:
            raise ValueError("batch_ms and max_batch must be positive")
        missing = [c for c in TRADE_COLUMNS if c not in trades.columns]
        if missing:
            raise ValueError(f"not a trade frame: missing columns {missing}")
        ts = trades["ts"].to_numpy(np.int64)
        if len(ts) and bool(np.any(np.diff(ts) < 0)):
            raise ValueError("trades must be sorted by time to be replayed")
        self.symbol = symbol
        self.speed = speed
        self.clock = clock
        self.gaps: list[FeedGap] = []
        self.delivered = 0
        self._ts = ts
        # Columns stay numpy; Python lists are made a chunk at a time (slicing lists per batch
        # is far cheaper than numpy → Python per trade, but lists of a whole month's tape cost
        # ~100 bytes per trade for as long as the replay runs).
        self._cols = (
            ts,
            trades["price"].to_numpy(np.float64),
            trades["size"].to_numpy(np.float64),
            trades["side"].to_numpy(np.int8),
            trades["trade_id"].to_numpy(object),
        )
        self._chunk_at = 0
        self._chunk: list[list[object]] = [[] for _ in self._cols]
        self._starts = batch_bounds(ts, batch_ms * 1_000_000, max_batch)
        self._closed = False
        # As fast as possible (a backtest) it also hands its batches out without the event loop.
        self.capabilities = FeedCapabilities(
            as_fast_as_possible=speed is None, batches=speed is None, span_ns=self.span_ns
        )

    @classmethod
    def from_file(cls, path: Path | str, **kwargs: object) -> ReplayFeed:
        trades, report = load_trades(Path(path))
        if report.malformed:
            logger.warning("replay: %s", report.summary())
        return cls(trades, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_lake(
        cls,
        lake: Lake,
        symbol: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        **kwargs: object,
    ) -> ReplayFeed:
        return cls(lake.read_trades(symbol, start_ns, end_ns), symbol=symbol, **kwargs)  # type: ignore[arg-type]

    @property
    def span_ns(self) -> int:
        """Market time from the first trade to the last."""
        return int(self._ts[-1] - self._ts[0]) if len(self._ts) else 0

    def __len__(self) -> int:
        """Number of batches."""
        return len(self._starts)

    async def close(self) -> None:
        self._closed = True

    def _batch(self, i: int, j: int) -> list[Trade]:
        """Trades ``i:j`` (batches are asked for in order, so one chunk of lists is kept)."""
        at = self._chunk_at
        if i < at or j > at + len(self._chunk[0]):
            at, end = i, min(max(j, i + CHUNK), len(self._ts))
            ts, price, size, side, ids = self._cols
            self._chunk = [
                ts[at:end].tolist(),
                price[at:end].tolist(),
                size[at:end].tolist(),
                side[at:end].tolist(),
                [str(k) for k in ids[at:end].tolist()],
            ]
            self._chunk_at = at
        symbols = repeat(self.symbol, j - i)
        return list(map(_make_trade, *(col[i - at : j - at] for col in self._chunk), symbols))

    def batches(self) -> Iterator[list[Trade]]:
        """The same batches as ``async for``, without the event loop: a backtest's synchronous
        drive (as fast as possible only: a replay at a speed waits for the wall clock)."""
        if self.speed is not None:
            raise ValueError("a replay at a speed waits: iterate it with async for")
        ends = np.append(self._starts[1:], len(self._ts))
        for i, j in zip(self._starts.tolist(), ends.tolist(), strict=True):
            if self._closed:
                return
            if self.clock is not None:
                self.clock.advance_to(int(self._ts[j - 1]))
            batch = self._batch(i, j)
            self.delivered += len(batch)
            yield batch

    async def __aiter__(self) -> AsyncIterator[list[Trade]]:
        if len(self._ts) == 0:
            return
        ends = np.append(self._starts[1:], len(self._ts))
        first_ts = int(self._ts[0])
        wall0 = time.monotonic()
        for k, (i, j) in enumerate(zip(self._starts.tolist(), ends.tolist(), strict=True)):
            if self._closed:
                return
            last_ts = int(self._ts[j - 1])
            if self.speed is not None:
                # Sleep until this batch is due on the wall clock (no drift: absolute schedule).
                due = wall0 + (last_ts - first_ts) / NS_PER_S / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif k % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let other tasks run now and then
            if self.clock is not None:
                self.clock.advance_to(last_ts)
            batch = self._batch(i, j)
            self.delivered += len(batch)
            yield batch
