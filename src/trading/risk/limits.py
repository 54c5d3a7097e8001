"""Risk limits: frozen, validated, per strategy and global (from the [risk] TOML tables)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StrategyLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_position_notional: float = Field(default=20_000.0, gt=0.0)  # USDT, |qty| × price
    max_order_notional: float = Field(default=20_000.0, gt=0.0)
    max_orders_per_minute: int = Field(default=12, ge=1)
    # Fractions of the book's starting capital / its peak equity.
    max_daily_loss: float = Field(default=0.05, gt=0.0, le=1.0)
    max_drawdown: float = Field(default=0.10, gt=0.0, le=1.0)


class GlobalLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_gross_notional: float = Field(default=250_000.0, gt=0.0)  # Σ |position| over books
    max_orders_per_minute: int = Field(default=120, ge=1)
    max_daily_loss: float = Field(default=0.05, gt=0.0, le=1.0)  # of total capital
    max_drawdown: float = Field(default=0.10, gt=0.0, le=1.0)
    # The last trade (the price an order is sized at) must be within this band of the last
    # one-second VWAP: a stray print does not move a book.
    price_band_bps: float = Field(default=50.0, gt=0.0)
    # No new risk when the last trade is older than this (exchange time, per the clock).
    max_data_age_s: float = Field(default=30.0, gt=0.0)
    # Orders from forecast-driven strategies need a forecast younger than this.
    max_forecast_age_s: float = Field(default=3.0, gt=0.0)


class RiskConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    strategy: StrategyLimits = StrategyLimits()
    global_: GlobalLimits = Field(default=GlobalLimits(), alias="global")
    # Per-strategy overrides by strategy name.
    overrides: dict[str, StrategyLimits] = Field(default_factory=dict)

    def for_strategy(self, name: str) -> StrategyLimits:
        return self.overrides.get(name, self.strategy)
