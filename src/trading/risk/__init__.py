"""Risk limits between every strategy and its exchange, and the kill switch."""

from cryptoarena.trading.risk.killswitch import (
    KillEvent,
    KillGuard,
    KillSwitch,
    KillSwitchError,
    kill_switch,
)
from cryptoarena.trading.risk.limits import GlobalLimits, RiskConfig, StrategyLimits
from cryptoarena.trading.risk.manager import OrderIntent, RiskManager

__all__ = [
    "GlobalLimits",
    "KillEvent",
    "KillGuard",
    "KillSwitch",
    "KillSwitchError",
    "OrderIntent",
    "RiskConfig",
    "RiskManager",
    "StrategyLimits",
    "kill_switch",
]
