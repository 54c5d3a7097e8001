"""Reference arms: buy-and-hold, and the naive (persistence) forecaster under the AI's own rule.

The naive forecaster predicts that the next ``horizon_s`` seconds repeat the last ``horizon_s``
seconds and trades it with exactly the AI strategy's fee rule: if the AI cannot beat this arm,
its forecasts add nothing.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
from cryptoarena.data.records import NS_PER_S, Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyConfig, StrategyContext
from cryptoarena.trading.strategies.span import LONG, SpanSignals, coded
from pydantic import Field, field_validator

if TYPE_CHECKING:
    import pandas as pd


class BuyAndHoldConfig(StrategyConfig):
    bar_size: str = "1s"


class BuyAndHold(Strategy[BuyAndHoldConfig]):
    kind = "buy_and_hold"
    config_type = BuyAndHoldConfig

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        return self.long("hold")

    def span_signals(self, bars: pd.DataFrame) -> SpanSignals:
        return coded(self.config, np.full(len(bars), LONG), lambda j, c: "hold")


class ForecastRuleConfig(StrategyConfig):
    """The fee rule shared by the AI strategy and the naive forecaster."""

    bar_size: str = "1s"
    horizon_s: int = Field(default=15, ge=1, le=15)
    # Extra edge over the round-trip fees (taker or maker, as ``execution`` says) before a
    # position is worth taking.
    margin_bps: float = Field(default=1.0, ge=0.0)
    # The user's own hurdle: when set, a position needs a forecast move beyond this many bps
    # (it replaces 2 × fee + margin_bps).
    threshold_bps: float | None = Field(default=None, ge=0.0, le=1000.0)

    def hurdle_bps(self, ctx: StrategyContext) -> float:
        """The forecast move (bps) a position must beat."""
        if self.threshold_bps is not None:
            return self.threshold_bps
        return 2.0 * ctx.fee_for(self.execution) * 1e4 + self.margin_bps

    @property
    def maker_ttl_ns(self) -> int:
        # A quote lives as long as the forecast behind it: the horizon, unless set.
        if self.maker_ttl_s is not None:
            return int(self.maker_ttl_s * NS_PER_S)
        return self.horizon_s * NS_PER_S

    @field_validator("bar_size")
    @classmethod
    def _one_second(cls, value: str) -> str:
        if value != "1s":
            raise ValueError("forecast strategies trade 1-second bars (bar_size='1s')")
        return value


def forecast_target(
    strategy: Strategy[Any], log_return: float, hurdle_bps: float, source: str
) -> float:
    """Long/short when the expected move beats the hurdle (round-trip fees plus the margin, or
    the user's ``threshold_bps``), else flat."""
    move_bps = log_return * 1e4
    if move_bps > hurdle_bps:
        return strategy.long(f"{source} +{move_bps:.2f} bps > hurdle {hurdle_bps:.2f}")
    if move_bps < -hurdle_bps:
        return strategy.short(f"{source} {move_bps:.2f} bps < -hurdle {hurdle_bps:.2f}")
    return strategy.flat(f"{source} {move_bps:+.2f} bps within hurdle {hurdle_bps:.2f}")


class NaiveForecaster(Strategy[ForecastRuleConfig]):
    kind = "naive_forecaster"
    config_type = ForecastRuleConfig

    def __init__(self, name: str, config: ForecastRuleConfig) -> None:
        super().__init__(name, config)
        self._closes: deque[float] = deque(maxlen=config.horizon_s + 1)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        self._closes.append(bar.close)
        if len(self._closes) <= self.config.horizon_s:
            return None
        last_move = math.log(self._closes[-1] / self._closes[0])
        return forecast_target(self, last_move, self.config.hurdle_bps(ctx), "persistence")
