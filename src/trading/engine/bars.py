"""The bar pipeline: one :class:`BarBuilder` per bar size in use, and the strategies each feeds.
The 1-second builder always exists: it also feeds the forecast pump and prediction outcomes."""

from __future__ import annotations

from cryptoarena.data.bars import BarBuilder
from cryptoarena.data.records import NS_PER_S, Bar, Trade
from cryptoarena.trading.engine.runner import StrategyRunner


class BarPipeline:
    def __init__(self, runners: list[StrategyRunner]) -> None:
        self.builders: dict[int, BarBuilder] = {}
        self.groups: dict[int, list[StrategyRunner]] = {}
        for runner in runners:
            self.builders.setdefault(runner.bar_ns, BarBuilder(runner.bar_ns))
            self.groups.setdefault(runner.bar_ns, []).append(runner)
        self.builders.setdefault(NS_PER_S, BarBuilder(NS_PER_S))
        self.groups.setdefault(NS_PER_S, [])

    def add(self, trades: list[Trade]) -> None:
        ts = [t.ts for t in trades]
        px = [t.price for t in trades]
        qty = [t.size for t in trades]
        side = [t.side for t in trades]
        for builder in self.builders.values():
            builder.add_many(ts, px, qty, side)

    def close(self, tick_ns: int) -> list[tuple[int, list[Bar]]]:
        """Bars every builder closed by ``tick_ns``, per bar size (sizes in a fixed order)."""
        out: list[tuple[int, list[Bar]]] = []
        for bar_ns, builder in self.builders.items():
            bars = builder.advance(tick_ns)
            if bars:
                out.append((bar_ns, bars))
        return out
