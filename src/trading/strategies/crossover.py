"""Trend following by moving-average crossovers: SMA fast/slow and EMA-based MACD."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from cryptoarena.data.records import Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyConfig, StrategyContext
from cryptoarena.trading.strategies.indicators import (
    Ema,
    Sma,
    price_units_array,
    sma_compare,
    sma_value,
    window_sums,
)
from cryptoarena.trading.strategies.span import LONG, NONE, SHORT, SpanSignals, coded, series
from pydantic import Field, model_validator

if TYPE_CHECKING:
    import pandas as pd


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
    """Long while the fast SMA is above the slow one, short (or flat) while below, no opinion
    while they are equal. The averages are compared exactly (sums of the closes in 1e-8 units,
    ``indicators.Sma``): equal averages are a tie, never a float rounding's ±1."""

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
        side = sma_compare(self._fast, self._slow)
        cfg = self.config
        if side > 0:
            return self.long(f"sma{cfg.fast} {fast:.2f} > sma{cfg.slow} {slow:.2f}")
        if side < 0:
            return self.short(f"sma{cfg.fast} {fast:.2f} < sma{cfg.slow} {slow:.2f}")
        return None

    def span_signals(self, bars: pd.DataFrame) -> SpanSignals | None:
        cfg = self.config
        units = price_units_array(bars["close"].to_numpy(np.float64), 2 * cfg.slow * cfg.slow)
        if units is None:
            return None
        fast, slow = window_sums(units, cfg.fast), window_sums(units, cfg.slow)
        diff = fast * cfg.slow - slow * cfg.fast  # the sign of SMA(fast) − SMA(slow), exact
        ready = np.arange(len(units)) >= cfg.slow - 1
        code = np.where(ready & (diff > 0), LONG, np.where(ready & (diff < 0), SHORT, NONE))

        def reason(j: int, c: int) -> str:
            f, s = sma_value(int(fast[j]), cfg.fast), sma_value(int(slow[j]), cfg.slow)
            if c == LONG:
                return f"sma{cfg.fast} {f:.2f} > sma{cfg.slow} {s:.2f}"
            if c == SHORT:
                return f"sma{cfg.fast} {f:.2f} < sma{cfg.slow} {s:.2f}"
            return ""

        return coded(self.config, code, reason)


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


# EMAs cannot be summed exactly: MACD and its signal closer than this fraction of the close are
# a tie (no opinion). Float noise in EMAs of a price is ~1e-15 of it; after a flat stretch both
# lines decay toward 0 and only that noise would decide.
MACD_TIE = 1e-9


class Macd(Strategy[MacdConfig]):
    """EMA crossover with a signal line: long while MACD is above its signal, short below, no
    opinion while they are within ``MACD_TIE`` × the close of each other."""

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
        if signal is None or abs(macd - signal) <= MACD_TIE * abs(bar.close):
            return None
        if macd > signal:
            return self.long(f"macd {macd:.3f} > signal {signal:.3f}")
        return self.short(f"macd {macd:.3f} < signal {signal:.3f}")

    def span_signals(self, bars: pd.DataFrame) -> SpanSignals:
        # The real EMAs over the span (a tight loop: exact by construction), the rule in numpy.
        cfg = self.config
        fast, slow, signal = Ema(cfg.fast), Ema(cfg.slow), Ema(cfg.signal)
        close = bars["close"].to_numpy(np.float64)
        macd: list[float | None] = []
        sig: list[float | None] = []
        for x in close.tolist():
            f, s = fast.update(x), slow.update(x)
            if f is None or s is None:
                macd.append(None)
                sig.append(None)
                continue
            macd.append(f - s)
            sig.append(signal.update(f - s))
        m, s_ = series(macd), series(sig)
        with np.errstate(invalid="ignore"):
            apart = np.abs(m - s_) > MACD_TIE * np.abs(close)  # NaN compares False
        code = np.where(apart & (m > s_), LONG, np.where(apart & (m < s_), SHORT, NONE))

        def reason(j: int, c: int) -> str:
            if c == LONG:
                return f"macd {m[j]:.3f} > signal {s_[j]:.3f}"
            if c == SHORT:
                return f"macd {m[j]:.3f} < signal {s_[j]:.3f}"
            return ""

        return coded(self.config, code, reason)
