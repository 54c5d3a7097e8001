"""Frozen configuration of a simulated venue (paper exchange, bar backtests, the fake Bybit)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from cryptoarena.trading.exchange.instruments import DEFAULT_INSTRUMENTS
from cryptoarena.trading.exchange.models import Instrument
from cryptoarena.trading.exchange.queues import QueueModel
from pydantic import BaseModel, ConfigDict, Field


class Liquidity(StrEnum):
    """How the tape's size is shared between the books (accounts) of one venue.

    ``isolated`` (default): every book fills against the whole tape as if it were alone, so a
    strategy's fills never depend on which other strategies run or in what order.
    ``shared``: one trade's size is shared by every book's orders in time priority (the books
    stand for one firm whose orders would meet the same liquidity: use it to ask what the
    arena as a whole could have traded, never to rank strategies)."""

    ISOLATED = "isolated"
    SHARED = "shared"


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
    liquidity: Liquidity = Liquidity.ISOLATED
    # Queue position of resting orders (exchange/queues.py, docs/exchange.md): the conservative
    # tape estimate by default; l2/l3 need a recorded book; "none" is the old no-queue rule.
    queue_model: QueueModel = QueueModel.TAPE
    queue_lookback_s: float = Field(default=10.0, gt=0, le=3600)
    queue_min_qty: Decimal = Field(default=Decimal(0), ge=0)
    # The tape estimate's window reaches back at least this many prints: about what 10 s hold
    # on a liquid tape (median 21 on the Binance day), so a sparse tape's window is not empty.
    queue_min_trades: int = Field(default=20, ge=0, le=100_000)
    # Bars only (``SimVenue.on_bar``, docs/exchange.md "Bar-level fills"): what a taker pays
    # against a bar's open, and an optional cap of one bar's fill at this share of its volume.
    slippage_bps: Decimal = Field(default=Decimal("1"), ge=0, le=1000)
    max_volume_fraction: Decimal | None = Field(default=None, gt=0, le=1)
