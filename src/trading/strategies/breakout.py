"""Donchian channel breakout."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from cryptoarena.data.records import Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyConfig, StrategyContext
from cryptoarena.trading.strategies.indicators import RollingExtremes
from cryptoarena.trading.strategies.span import LONG, NONE, SHORT, SpanSignals, coded
from pydantic import Field

if TYPE_CHECKING:
    import pandas as pd


class DonchianConfig(StrategyConfig):
    period: int = Field(default=20, ge=2)

    @property
    def warmup_bars(self) -> int:
        return self.period


class Donchian(Strategy[DonchianConfig]):
    """Long on a close above the previous ``period`` bars' high, short below their low."""

    kind = "donchian"
    config_type = DonchianConfig

    def __init__(self, name: str, config: DonchianConfig) -> None:
        super().__init__(name, config)
        self._channel = RollingExtremes(config.period)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        channel = self._channel
        target: float | None = None
        # Compare with the channel of the bars BEFORE this one, then add this bar.
        if channel.ready:
            if bar.close > channel.high:
                target = self.long(f"close {bar.close:.2f} broke the high {channel.high:.2f}")
            elif bar.close < channel.low:
                target = self.short(f"close {bar.close:.2f} broke the low {channel.low:.2f}")
        channel.update(bar.high, bar.low)
        return target

    def span_signals(self, bars: pd.DataFrame) -> SpanSignals:
        p = self.config.period
        close = bars["close"].to_numpy(np.float64)
        # The channel of the bars BEFORE each bar (a max/min: exact whatever the order).
        high = bars["high"].rolling(p).max().shift(1).to_numpy(np.float64)
        low = bars["low"].rolling(p).min().shift(1).to_numpy(np.float64)
        code = np.where(close > high, LONG, np.where(close < low, SHORT, NONE))

        def reason(j: int, c: int) -> str:
            if c == LONG:
                return f"close {close[j]:.2f} broke the high {high[j]:.2f}"
            if c == SHORT:
                return f"close {close[j]:.2f} broke the low {low[j]:.2f}"
            return ""

        return coded(self.config, code, reason)
