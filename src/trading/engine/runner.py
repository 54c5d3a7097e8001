"""Runs one strategy: warm-up, and the guarded hook (bars come from the worker's shared builders).

An exception in a strategy's hook halts that strategy only: the runner stops calling it, the
worker journals the error (a risk event) and flattens its book through the risk manager.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any

from cryptoarena.data.records import Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyContext

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    strategy: str
    bar_ts_ns: int
    target: float | None  # None: keep the current position
    reason: str
    warming_up: bool = False


@dataclass(frozen=True, slots=True)
class StrategyCrash:
    strategy: str
    bar_ts_ns: int
    error: str
    trace: str


class StrategyRunner:
    def __init__(self, strategy: Strategy[Any]) -> None:
        self.strategy = strategy
        self.name = strategy.name
        self.bar_ns = int(strategy.config.bar_ns)
        self.bars_seen = 0
        self.crashed: StrategyCrash | None = None
        self.last_target: float | None = None

    @property
    def warmup_bars(self) -> int:
        return int(self.strategy.config.warmup_bars)

    def on_bars(self, bars: list[Bar], ctx: StrategyContext) -> list[Decision | StrategyCrash]:
        """Feed closed bars to the hook (guarded); one decision per bar."""
        out: list[Decision | StrategyCrash] = []
        for bar in bars:
            if self.crashed is not None:
                break
            out.append(self.step(bar, ctx))
        return out

    def step(self, bar: Bar, ctx: StrategyContext) -> Decision | StrategyCrash:
        strategy = self.strategy
        strategy.reason = ""
        try:
            target = strategy.on_bar(bar, ctx)
            if target is not None:
                target = float(target)
                if not -1.0 <= target <= 1.0 or target != target:
                    raise ValueError(f"target {target!r} outside -1..1")
        except Exception as exc:  # the guard: one strategy's bug never stops the others
            self.crashed = StrategyCrash(
                self.name, bar.ts, f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=5)
            )
            logger.error("strategy %s raised on bar %d: %s", self.name, bar.ts, exc)
            return self.crashed
        self.bars_seen += 1
        if self.bars_seen <= self.warmup_bars:
            return Decision(
                self.name, bar.ts, None, f"warming up {self.bars_seen}/{self.warmup_bars}", True
            )
        if target is not None:
            self.last_target = target
        return Decision(self.name, bar.ts, target, strategy.reason)
