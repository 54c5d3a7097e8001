"""The market feed contract: an async iterator of trade batches, live or recorded.

A feed *declares* what it is (:class:`FeedCapabilities`): the engine reads the declaration
instead of probing the feed for a speed or a ``batches`` method.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
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


@dataclass(frozen=True, slots=True)
class FeedCapabilities:
    """What a feed declares, so the engine never probes it: a live feed declares nothing."""

    # Batches come as fast as the engine takes them (a backtest's replay), not on the wall clock.
    as_fast_as_possible: bool = False
    batches: bool = False  # hands out its batches without the event loop too (BatchFeed)
    span_ns: int = 0  # the exchange time a recorded replay covers (0: open-ended, live)


LIVE_FEED = FeedCapabilities()


class MarketFeed(Protocol):
    """Yields batches of trades in exchange-time order; gaps are reported in ``gaps``."""

    symbol: str
    gaps: list[FeedGap]
    capabilities: FeedCapabilities

    def __aiter__(self) -> AsyncIterator[list[Trade]]: ...

    async def close(self) -> None: ...


class BatchFeed(MarketFeed, Protocol):
    """A feed that declares ``batches``: the same batches as ``async for``, without the event
    loop (a backtest's synchronous drive)."""

    def batches(self) -> Iterator[list[Trade]]: ...
