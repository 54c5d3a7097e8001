"""The market feed contract: an async iterator of trade batches, live or recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from cryptoarena.data.records import Trade


@dataclass(frozen=True, slots=True)
class FeedGap:
    """A span in which the feed may have missed trades (reconnect, silence)."""

    start_ns: int
    end_ns: int
    reason: str
    recovered: int = 0  # trades delivered only thanks to the backfill (over REST), not live
    complete: bool = False  # the backfill reached back before the gap and nothing was missed
    # Trades the backfill found that were older than what had already been delivered (it came
    # back after the live trades were released): they could not join the time-ordered stream.
    missed: int = 0


class MarketFeed(Protocol):
    """Yields batches of trades in exchange-time order; gaps are reported in ``gaps``."""

    symbol: str
    gaps: list[FeedGap]

    def __aiter__(self) -> AsyncIterator[list[Trade]]: ...

    async def close(self) -> None: ...
