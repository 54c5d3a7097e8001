"""The AI arm: trades the served 15-second forecast when its expected move beats the hurdle
(round-trip fees of its execution style plus a margin, or the user's ``threshold_bps``).

The forecast is fetched ahead of need by the worker's forecast pump (a background task, one
request per second); the hook only reads the latest one from the context. When it is stale,
missing, or the model is unhealthy the strategy stands aside: it keeps its position, sends
nothing, and the reason is journaled.
"""

from __future__ import annotations

from cryptoarena.data.records import Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyContext
from cryptoarena.trading.strategies.reference import ForecastRuleConfig, forecast_target
from pydantic import Field


class AiForecastConfig(ForecastRuleConfig):
    # A forecast older than this (from its bar's close to now) is stale.
    max_forecast_age_s: float = Field(default=2.5, gt=0.0, le=60.0)


class AiForecast(Strategy[AiForecastConfig]):
    kind = "ai_forecast"
    config_type = AiForecastConfig
    uses_forecast = True

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        forecast = ctx.forecast
        if forecast is None:
            self.note(f"stand aside: {ctx.forecast_problem or 'no forecast'}")
            return None
        horizon = self.config.horizon_s
        if len(forecast.log_returns) < horizon:
            self.note(f"stand aside: forecast has {len(forecast.log_returns)} steps < {horizon}")
            return None
        return forecast_target(
            self,
            forecast.log_returns[horizon - 1],
            self.config.hurdle_bps(ctx),
            f"model v{forecast.model_version}",
        )
