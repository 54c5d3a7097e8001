"""Strategies by kind: the classical families, the reference arms and the AI arm."""

from __future__ import annotations

from typing import Any

from cryptoarena.trading.strategies.ai import AiForecast, AiForecastConfig
from cryptoarena.trading.strategies.base import (
    Strategy,
    StrategyConfig,
    StrategyContext,
)
from cryptoarena.trading.strategies.breakout import Donchian
from cryptoarena.trading.strategies.crossover import Macd, SmaCross
from cryptoarena.trading.strategies.reference import BuyAndHold, NaiveForecaster
from cryptoarena.trading.strategies.reversion import Bollinger, RsiReversion, VwapReversion

STRATEGY_TYPES: dict[str, type[Strategy[Any]]] = {
    cls.kind: cls
    for cls in (
        SmaCross,
        Macd,
        RsiReversion,
        Bollinger,
        Donchian,
        VwapReversion,
        BuyAndHold,
        NaiveForecaster,
        AiForecast,
    )
}
CLASSICAL_KINDS = frozenset(
    {"sma_cross", "macd", "rsi_reversion", "bollinger", "donchian", "vwap_reversion"}
)
AI_KINDS = frozenset({"ai_forecast"})


class UnknownStrategyError(ValueError):
    pass


def build_strategy(name: str, kind: str, params: dict[str, Any] | None = None) -> Strategy[Any]:
    """A strategy from its kind and parameters (validated by its frozen config)."""
    try:
        cls = STRATEGY_TYPES[kind]
    except KeyError:
        known = ", ".join(sorted(STRATEGY_TYPES))
        raise UnknownStrategyError(f"unknown strategy kind {kind!r} (known: {known})") from None
    config = cls.config_type.model_validate(params or {})
    return cls(name, config)


__all__ = [
    "AI_KINDS",
    "CLASSICAL_KINDS",
    "STRATEGY_TYPES",
    "AiForecast",
    "AiForecastConfig",
    "Strategy",
    "StrategyConfig",
    "StrategyContext",
    "UnknownStrategyError",
    "build_strategy",
]
