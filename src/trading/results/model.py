"""The typed report of a run: what ``arena report --format json`` prints and the dashboard reads.

Import :class:`RunReport` from here (``cryptoarena.trading.results.model``) and validate the
JSON with ``RunReport.model_validate_json``. Fields that the journal may not know are ``None``
("unknown"), never guessed: e.g. ``complete`` is ``None`` for a run journaled before runs recorded
how they ended.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class ReportFormat(StrEnum):
    """``arena report --format``."""

    table = "table"
    json = "json"
    markdown = "markdown"


Family = str  # "ai", "classical" or "reference"
VerdictCase = Literal[
    "ai_flat",  # no AI arm traded: standing aside vs the classical mean
    "ai_ahead",  # CI excludes zero, above
    "ai_behind",  # CI excludes zero, below
    "inconclusive",  # CI includes zero
    "too_little_data",
    "no_ai_arm",
    "no_classical_arm",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Halt(_Frozen):
    """Why and when a limit stopped a strategy (or all of them, or the kill switch)."""

    reason: str
    ts_ns: int | None = None  # market time of the halt, when journaled
    scope: Literal["strategy", "global", "kill"] = "strategy"


class MarkoutHorizon(_Frozen):
    """Mean markout at one horizon over the fills that have one (bp, positive: the market moved
    the fill's way), with a normal 95 % interval of the mean (None below two fills); makers
    (PostOnly quotes) and takers apart."""

    horizon_s: int
    fills: int
    mean_bp: float | None = None
    ci: tuple[float, float] | None = None
    maker_fills: int = 0
    maker_mean_bp: float | None = None
    taker_fills: int = 0
    taker_mean_bp: float | None = None


class Markouts(_Frozen):
    """A strategy's fill markouts at 1, 5 and 15 s (``records``: fills with a markout record;
    a horizon past the run's end has none). ``reference``: "mid" (a recorded book), "trade"
    (the last trade price), or both when the book had gaps."""

    records: int
    reference: str | None = None
    confidence: float = 0.95
    interval: Literal["normal"] = "normal"
    horizons: list[MarkoutHorizon] = Field(default_factory=list)


class StrategyRow(_Frozen):
    """One line of the leaderboard, ranked by P&L after fees. ``rank`` is ``None`` for an
    inactive strategy (no fills: nothing to rank); strategies whose P&L is equal to the cent
    share a rank (``tied``). ``at_limit`` names the risk limit a halted strategy's loss was
    capped by ("daily loss", "drawdown"): its P&L says where the limit is, not how it traded."""

    name: str
    rank: int | None = None
    tied: bool = False
    inactive: bool = False
    at_limit: str | None = None
    family: Family
    kind: str | None = None
    # "taker" (market orders) or "maker" (PostOnly quotes at the touch); None in older runs.
    execution: str | None = None
    capital: float
    equity: float
    pnl: float  # after fees, marked to the last price
    return_pct: float
    realised: float
    unrealised: float
    fees: float
    fills: int
    round_trips: int
    win_rate: float | None = None
    profit_factor: float | None = None
    expectancy: float | None = None
    # Per day, from daily returns (never annualised, never from sub-day snapshots): None for a
    # run that touches fewer than three UTC days. ``psr`` beside them is per snapshot period.
    sharpe_daily: float | None = None
    sortino_daily: float | None = None
    days: int = 0  # daily returns behind sharpe_daily
    calmar: float | None = None
    max_drawdown: float  # fraction of the peak
    exposure: float  # share of snapshots holding a position
    snapshots: int
    psr: float | None = None  # P(true Sharpe > 0)
    halted: Halt | None = None
    markouts: Markouts | None = None  # None: no fill with a markout record


UNIT = "bp/day"
UNIT_WORDS = "basis points of capital per day"


class Comparison(_Frozen):
    """One AI arm minus one benchmark: the mean return difference in basis points of capital
    per day (the mean per-snapshot difference × snapshots per day) and its paired bootstrap
    interval in the same unit. ``p_value``: two-sided bootstrap p of a zero difference;
    ``p_holm``: Holm-adjusted over the AI arms (against the classical mean only)."""

    ai: str
    versus: str  # a classical strategy, "classical mean" or "best classical (<name>)"
    mean_diff_bp_day: float
    ci: tuple[float, float]
    significant: bool  # the interval excludes zero
    p_value: float | None = None
    p_holm: float | None = None


class Selection(_Frozen):
    """Deflated Sharpe ratio of the best of ``trials`` strategies (per-period Sharpe)."""

    best: str
    trials: int
    sharpe: float
    threshold: float  # the Sharpe the best of N reaches by luck alone
    dsr: float | None


class Verdict(_Frozen):
    """The headline is one AI arm against the classical mean. Picked as the best of several AI
    arms by P&L, its interval is widened for that choice (``headline_confidence`` = 1 − α/k,
    Bonferroni–Holm over the k arms that traded); every AI arm keeps its own interval in
    ``comparisons`` and in the sentence."""

    sentence: str
    case: VerdictCase
    unit: str = UNIT  # of ci and mean_diff_bp_day, everywhere
    ci: tuple[float, float] | None = None  # headline comparison, bp/day
    mean_diff_bp_day: float | None = None
    confidence: float = 0.95
    headline_confidence: float | None = None  # the headline's interval, adjusted for the pick
    ai: str | None = None  # the headline AI arm
    ai_arms: int = 0  # AI arms the headline was picked from
    ai_traded: bool | None = None
    benchmark: str = "classical mean"
    best_classical: str | None = None
    periods: int = 0
    period_s: float | None = None
    block_length: int | None = None
    resamples: int = 0
    comparisons: list[Comparison] = Field(default_factory=list)
    selection: Selection | None = None


class ForecastQuality(_Frozen):
    """From the prediction ledger: resolved forecasts of one model version vs persistence."""

    model_version: str
    predictions: int  # resolved (realised price known)
    horizon_s: int | None = None
    mae_bps: float
    persistence_mae_bps: float
    skill: float | None  # 1 − MSE / MSE(persistence) (cryptoarena.model.skill); > 0 beats it
    mae_skill: float | None = None  # 1 − MAE / MAE(persistence), same forecasts
    directional_accuracy: float | None  # on realised moves ≠ 0; persistence has no direction
    moves: int


class RunReport(_Frozen):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    started_wall_ns: int | None = None  # wall clock of the (last) start
    start_ns: int | None = None  # market time span covered by the equity snapshots
    end_ns: int | None = None
    complete: bool | None = None  # None: unknown (the run did not record it)
    ended_by: str | None = None  # None: no stop record (still running, or it crashed)
    error: str | None = None  # the exception a crashed run recorded
    # Out of sample: None = unknown / no AI model involved; True = scored on the model's own
    # training or validation data (``--allow-in-sample``); False = only after its validation end.
    in_sample: bool | None = None
    model_valid_until_ns: int | None = None
    trade_from_ns: int | None = None
    incarnations: int = 1
    capital: float | None = None
    strategies: list[StrategyRow]
    verdict: Verdict
    forecasts: list[ForecastQuality] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
