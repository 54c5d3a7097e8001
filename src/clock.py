"""An injected clock: live code and backtests ask the same object for the time.

A replay or backtest drives a :class:`SimClock` from the data's own timestamps, so a backtest
runs as fast as the machine allows while every component sees consistent exchange time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    # Declared, so a run knows its mode without testing the clock's class: a simulated clock
    # moves only when the replay says (a backtest or replay), a live one with the wall.
    simulated: bool

    def now_ns(self) -> int:
        """Nanoseconds since the epoch, UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class LiveClock:
    """Wall-clock time."""

    simulated = False

    def now_ns(self) -> int:
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SimClock:
    """Time that moves only when told to (by the replay feed, from recorded timestamps)."""

    simulated = True

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        # Time never runs backwards, even if a late trade arrives.
        if ts_ns > self._now:
            self._now = ts_ns

    async def sleep(self, seconds: float) -> None:
        self._now += int(seconds * 1e9)
        await asyncio.sleep(0)
