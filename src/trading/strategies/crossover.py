"""Trend following by moving-average crossovers: SMA fast/slow and EMA-based MACD."""

from __future__ import annotations

from cryptoarena.data.records import Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyConfig, StrategyContext
from cryptoarena.trading.strategies.indicators import Ema, Sma
from pydantic import Field, model_validator


class SmaCrossConfig(StrategyConfig):
    fast: int = Field(default=10, ge=1)
    slow: int = Field(default=30, ge=2)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossConfig:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self

    @property
    def warmup_bars(self) -> int:
        return self.slow


class SmaCross(Strategy[SmaCrossConfig]):
    """Long while the fast SMA is above the slow one, short (or flat) while below."""

    kind = "sma_cross"
    config_type = SmaCrossConfig

    def __init__(self, name: str, config: SmaCrossConfig) -> None:
        super().__init__(name, config)
        self._fast = Sma(config.fast)
        self._slow = Sma(config.slow)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        fast = self._fast.update(bar.close)
        slow = self._slow.update(bar.close)
        if fast is None or slow is None:
            return None
        if fast > slow:
            return self.long(f"sma{self.config.fast} {fast:.2f} > sma{self.config.slow} {slow:.2f}")
        if fast < slow:
            return self.short(
                f"sma{self.config.fast} {fast:.2f} < sma{self.config.slow} {slow:.2f}"
            )
        return None


class MacdConfig(StrategyConfig):
    fast: int = Field(default=12, ge=1)
    slow: int = Field(default=26, ge=2)
    signal: int = Field(default=9, ge=1)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdConfig:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self

    @property
    def warmup_bars(self) -> int:
        return self.slow + self.signal


class Macd(Strategy[MacdConfig]):
    """EMA crossover with a signal line: long while MACD is above its signal, short below."""

    kind = "macd"
    config_type = MacdConfig

    def __init__(self, name: str, config: MacdConfig) -> None:
        super().__init__(name, config)
        self._fast = Ema(config.fast)
        self._slow = Ema(config.slow)
        self._signal = Ema(config.signal)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        fast = self._fast.update(bar.close)
        slow = self._slow.update(bar.close)
        if fast is None or slow is None:
            return None
        macd = fast - slow
        signal = self._signal.update(macd)
        if signal is None:
            return None
        if macd > signal:
            return self.long(f"macd {macd:.3f} > signal {signal:.3f}")
        if macd < signal:
            return self.short(f"macd {macd:.3f} < signal {signal:.3f}")
        return None
