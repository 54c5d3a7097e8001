"""Frozen configuration of a simulated venue (paper exchange and the fake Bybit)."""

from __future__ import annotations

from decimal import Decimal

from cryptoarena.trading.exchange.instruments import DEFAULT_INSTRUMENTS
from cryptoarena.trading.exchange.models import Instrument
from pydantic import BaseModel, ConfigDict, Field


class VenueConfig(BaseModel):
    """Fees, latency and account of a simulated venue (Bybit linear defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    maker_fee: Decimal = Field(default=Decimal("0.0002"), ge=-1, le=1)
    taker_fee: Decimal = Field(default=Decimal("0.00055"), ge=-1, le=1)
    latency_ms: float = Field(default=50.0, ge=0, le=60_000)
    initial_balance: Decimal = Field(default=Decimal("10000"), ge=0)
    coin: str = "USDT"
    leverage: Decimal = Field(default=Decimal("10"), gt=0, le=100)
    instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS
