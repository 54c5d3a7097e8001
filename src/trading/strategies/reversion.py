"""Mean reversion: RSI extremes, Bollinger bands, distance from the rolling VWAP."""

from __future__ import annotations

from cryptoarena.data.records import Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyConfig, StrategyContext
from cryptoarena.trading.strategies.indicators import RollingStd, RollingVwap, Rsi
from pydantic import Field, model_validator


class RsiConfig(StrategyConfig):
    period: int = Field(default=14, ge=2)
    lower: float = Field(default=30.0, gt=0.0, lt=100.0)
    upper: float = Field(default=70.0, gt=0.0, lt=100.0)

    @model_validator(mode="after")
    def _lower_below_upper(self) -> RsiConfig:
        if not self.lower < 50.0 < self.upper:
            raise ValueError(f"need lower < 50 < upper, got {self.lower} and {self.upper}")
        return self

    @property
    def warmup_bars(self) -> int:
        return self.period + 1


class RsiReversion(Strategy[RsiConfig]):
    """Buy oversold, sell overbought, go flat when RSI crosses back through 50."""

    kind = "rsi_reversion"
    config_type = RsiConfig

    def __init__(self, name: str, config: RsiConfig) -> None:
        super().__init__(name, config)
        self._rsi = Rsi(config.period)
        self._side = 0

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        rsi = self._rsi.update(bar.close)
        if rsi is None:
            return None
        cfg = self.config
        if rsi < cfg.lower:
            self._side = 1
            return self.long(f"rsi {rsi:.1f} < {cfg.lower}")
        if rsi > cfg.upper:
            self._side = -1
            return self.short(f"rsi {rsi:.1f} > {cfg.upper}")
        if (self._side > 0 and rsi >= 50.0) or (self._side < 0 and rsi <= 50.0):
            self._side = 0
            return self.flat(f"rsi {rsi:.1f} back through 50")
        return None


class BollingerConfig(StrategyConfig):
    period: int = Field(default=20, ge=2)
    k: float = Field(default=2.0, gt=0.0, le=10.0)

    @property
    def warmup_bars(self) -> int:
        return self.period


class Bollinger(Strategy[BollingerConfig]):
    """Fade closes outside the bands; go flat at the middle band."""

    kind = "bollinger"
    config_type = BollingerConfig

    def __init__(self, name: str, config: BollingerConfig) -> None:
        super().__init__(name, config)
        self._std = RollingStd(config.period)
        self._side = 0

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        stats = self._std.update(bar.close)
        if stats is None:
            return None
        mid, sd = stats
        if sd <= 0.0:
            return None
        upper, lower = mid + self.config.k * sd, mid - self.config.k * sd
        if bar.close < lower:
            self._side = 1
            return self.long(f"close {bar.close:.2f} < lower band {lower:.2f}")
        if bar.close > upper:
            self._side = -1
            return self.short(f"close {bar.close:.2f} > upper band {upper:.2f}")
        if (self._side > 0 and bar.close >= mid) or (self._side < 0 and bar.close <= mid):
            self._side = 0
            return self.flat(f"close {bar.close:.2f} back at the middle band {mid:.2f}")
        return None


class VwapReversionConfig(StrategyConfig):
    period: int = Field(default=60, ge=2)
    threshold_bps: float = Field(default=10.0, gt=0.0)
    exit_bps: float = Field(default=2.0, ge=0.0)

    @model_validator(mode="after")
    def _exit_inside_entry(self) -> VwapReversionConfig:
        if self.exit_bps >= self.threshold_bps:
            raise ValueError("exit_bps must be smaller than threshold_bps")
        return self

    @property
    def warmup_bars(self) -> int:
        return self.period


class VwapReversion(Strategy[VwapReversionConfig]):
    """Fade moves more than ``threshold_bps`` away from the rolling VWAP."""

    kind = "vwap_reversion"
    config_type = VwapReversionConfig

    def __init__(self, name: str, config: VwapReversionConfig) -> None:
        super().__init__(name, config)
        self._vwap = RollingVwap(config.period)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        vwap = self._vwap.update(bar.vwap, bar.volume)
        if vwap is None:
            return None
        dist_bps = (bar.close / vwap - 1.0) * 1e4
        cfg = self.config
        if dist_bps < -cfg.threshold_bps:
            return self.long(f"{dist_bps:.1f} bps below vwap")
        if dist_bps > cfg.threshold_bps:
            return self.short(f"{dist_bps:.1f} bps above vwap")
        if abs(dist_bps) <= cfg.exit_bps:
            return self.flat(f"back within {cfg.exit_bps} bps of vwap")
        return None
