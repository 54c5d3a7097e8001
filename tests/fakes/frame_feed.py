"""A market feed over a slice of the real shipped trade tape (until data's ReplayFeed is used).

Batches are what a live feed delivers: the trades of one exchange millisecond... grouped in
chunks of ``batch`` trades, in time order, as fast as the consumer takes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pandas as pd
from cryptoarena.data.feed import FeedGap
from cryptoarena.data.records import Trade


class FrameFeed:
    def __init__(self, trades: pd.DataFrame, *, symbol: str = "BTCUSDT", batch: int = 20) -> None:
        self.symbol = symbol
        self.gaps: list[FeedGap] = []
        self._trades = trades
        self._batch = batch
        self.closed = False

    def __aiter__(self) -> AsyncIterator[list[Trade]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[Trade]]:
        t = self._trades
        rows = zip(t["ts"].tolist(), t["price"].tolist(), t["size"].tolist(), t["side"].tolist(),
                   t["trade_id"].tolist(), strict=True)  # fmt: skip
        batch: list[Trade] = []
        for ts, price, size, side, tid in rows:
            batch.append(
                Trade(int(ts), float(price), float(size), int(side), str(tid), self.symbol)
            )
            if len(batch) >= self._batch:
                yield batch
                batch = []
        if batch:
            yield batch

    async def close(self) -> None:
        self.closed = True
