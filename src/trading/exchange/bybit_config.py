"""Frozen configuration of the Bybit adapter (the venue itself comes from ``settings.bybit``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BybitExchangeConfig(BaseModel):
    """How the adapter talks to Bybit; the venue itself comes from ``settings.bybit``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str = "linear"
    coin: str = "USDT"
    symbols: tuple[str, ...] = ("BTCUSDT",)
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    private_stream: bool = True
    ws_auth_expire_s: int = Field(default=10, ge=2)
    ws_ping_interval_s: int = Field(default=20, ge=2)
    ws_ping_timeout_s: int = Field(default=10, ge=1)
    ws_check_interval_s: float = Field(default=2.0, gt=0)
    ws_backoff_max_s: float = Field(default=30.0, gt=0)
    max_clock_skew_s: float = Field(default=1.0, gt=0)
    resync_lookback_s: float = Field(default=5.0, ge=0)
