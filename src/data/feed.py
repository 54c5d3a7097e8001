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
    recovered: int = 0  # trades in the span delivered late (e.g. backfilled over REST)
    complete: bool = False  # the recovery reached back to trades seen before the gap


class MarketFeed(Protocol):
    """Yields batches of trades in exchange-time order; gaps are reported in ``gaps``."""

    symbol: str
    gaps: list[FeedGap]

    def __aiter__(self) -> AsyncIterator[list[Trade]]: ...

    async def close(self) -> None: ...
