"""Moved to :mod:`cryptoarena.trading.results.stats` (kept so older imports keep working)."""

from cryptoarena.trading.results.stats import (
    SECONDS_PER_YEAR,
    StrategyStats,
    calmar,
    max_drawdown,
    period_returns,
    sharpe,
    sortino,
    strategy_stats,
)
from cryptoarena.trading.results.verdict import Comparison, compare_ai_vs_classical

__all__ = [
    "SECONDS_PER_YEAR",
    "Comparison",
    "StrategyStats",
    "calmar",
    "compare_ai_vs_classical",
    "max_drawdown",
    "period_returns",
    "sharpe",
    "sortino",
    "strategy_stats",
]
