"""The strategy contract: a frozen config, a bar size, warm-up, and ONE hook.

A strategy never sends orders. The framework (:mod:`cryptoarena.trading.engine.runner`) builds its bars
from the shared trade stream, calls :meth:`Strategy.on_bar` through a guard, and turns the
returned target position (a fraction of the book's equity, −1..1) into orders through the risk
manager. ``None`` means "no opinion, keep what I have". :meth:`Strategy.note` says why, and the
reason is journaled with the decision.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, Literal, Protocol, TypeVar

from cryptoarena.data.bars import parse_bar_size
from cryptoarena.data.records import NS_PER_S, Bar
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import pandas as pd
    from cryptoarena.trading.strategies.span import SpanSignals


class ForecastView(Protocol):
    """What a strategy may read from a served forecast (serving.client.Forecast fits)."""

    @property
    def bar_ts_ns(self) -> int: ...

    @property
    def log_returns(self) -> tuple[float, ...]: ...

    @property
    def model_version(self) -> str: ...


# How a strategy's targets become orders (docs/trading.md "Execution styles"): ``taker`` sends
# market orders; ``maker`` rests a PostOnly limit at the touch in the target's direction.
Execution = Literal["taker", "maker"]
# Bybit linear maker fee per side (the paper venue's too): what a maker strategy assumes by default.
MAKER_FEE_RATE = 0.0002


@dataclass(frozen=True, slots=True)
class StrategyContext:
    """What the framework tells a strategy besides the bar."""

    now_ns: int
    fee_rate: float  # taker fee per side, as a fraction (0.00055 = 5.5 bps)
    forecast: ForecastView | None = None
    # Why there is no usable forecast (stale, missing, model unhealthy), when there is none.
    forecast_problem: str | None = None
    maker_fee_rate: float = MAKER_FEE_RATE  # maker fee per side (0.0002 = 2 bps)

    def fee_for(self, execution: Execution) -> float:
        """The fee per side a strategy with this execution style pays."""
        return self.maker_fee_rate if execution == "maker" else self.fee_rate


class StrategyConfig(BaseModel):
    """Fields every strategy has; each family adds its own, validated, and stays frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bar_size: str = "1m"
    # Position at full conviction, as a fraction of the book's equity.
    size: float = Field(default=1.0, gt=0.0, le=1.0)
    allow_short: bool = True
    # Market orders (taker) or PostOnly limits joining the touch (maker); exits that must
    # happen (kill switch, halts, stop) are market orders whatever this says.
    execution: Execution = "taker"
    # Maker: a resting quote no target has confirmed for this long is cancelled (default: one
    # bar; forecast strategies: the forecast horizon).
    maker_ttl_s: float | None = Field(default=None, gt=0.0, le=3600.0)

    @field_validator("bar_size")
    @classmethod
    def _bar_size_parses(cls, value: str) -> str:
        parse_bar_size(value)
        return value

    @property
    def bar_ns(self) -> int:
        return parse_bar_size(self.bar_size)

    @property
    def maker_ttl_ns(self) -> int:
        """How long a maker quote rests without a target that still wants it."""
        if self.maker_ttl_s is not None:
            return int(self.maker_ttl_s * NS_PER_S)
        return self.bar_ns

    @property
    def warmup_bars(self) -> int:
        """Bars to see before the hook's targets count (indicators still update during it)."""
        return 0


C = TypeVar("C", bound=StrategyConfig)


class Strategy(ABC, Generic[C]):
    """Base class: subclasses set ``kind`` and ``config_type`` and implement :meth:`on_bar`."""

    kind: ClassVar[str]
    config_type: ClassVar[type[StrategyConfig]]
    # Reference arms and classical strategies do not read forecasts; the AI one does.
    uses_forecast: ClassVar[bool] = False

    def __init__(self, name: str, config: C) -> None:
        self.name = name
        self.config = config
        self.reason = ""

    @abstractmethod
    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        """The hook: update indicators with ``bar`` and return a target position or None."""

    def span_signals(self, bars: pd.DataFrame) -> SpanSignals | None:
        """The vectorised twin of :meth:`on_bar` over a frame of this strategy's bars, from a
        fresh strategy (strategies/span.py); None: no twin, the engine steps ``on_bar``."""
        return None

    def note(self, reason: str) -> None:
        self.reason = reason

    def long(self, reason: str) -> float:
        self.reason = reason
        return self.config.size

    def short(self, reason: str) -> float:
        self.reason = reason
        return -self.config.size if self.config.allow_short else 0.0

    def flat(self, reason: str) -> float:
        self.reason = reason
        return 0.0
