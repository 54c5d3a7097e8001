"""Donchian channel breakout."""

from __future__ import annotations

from cryptoarena.data.records import Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyConfig, StrategyContext
from cryptoarena.trading.strategies.indicators import RollingExtremes
from pydantic import Field


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
