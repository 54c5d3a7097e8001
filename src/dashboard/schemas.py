"""What the dashboard API answers: one response model per route (times in ns since the epoch,
money in USDT, returns in percent or basis points as the field name says)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from cryptoarena.trading.results.model import Markouts
from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list that grows (newest first)."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Health(BaseModel):
    ok: bool
    journal: str  # "embedded" or "mongodb"
    runs: int


class RunInfo(BaseModel):
    run_id: str
    source: str | None = None
    exchange: str | None = None
    symbol: str | None = None
    started_ns: int
    ended_ns: int | None = None
    ended_by: str | None = None  # why it stopped; None while it runs
    running: bool
    first_data_ns: int | None = None  # the market span the run traded (in-sample = its own span)
    last_data_ns: int | None = None
    strategies: list[str]
    capital: float | None = None


class StrategyRow(BaseModel):
    rank: int | None  # None: inactive (no fills), not ranked
    tied: bool = False  # same P&L to the cent as another row (same rank)
    inactive: bool = False
    at_limit: str | None = None  # the loss limit a halt capped it at ("daily loss", "drawdown")
    strategy: str
    family: str
    is_ai: bool
    execution: str | None = None  # "taker" or "maker" (how its targets become orders)
    equity: float
    pnl: float
    return_pct: float
    fees: float
    fills: int
    round_trips: int
    win_rate: float | None
    profit_factor: float | None
    sharpe_daily: float | None  # per day, from daily returns; None under three UTC days
    sortino_daily: float | None
    psr: float | None = None  # P(per-snapshot Sharpe > 0)
    max_drawdown_pct: float
    exposure_pct: float
    halted: str | None = None


class Interval(BaseModel):
    """AI minus one rival (or the classical mean): mean return difference in basis points of
    capital per day (the verdict's one unit), with its bootstrap interval."""

    rival: str
    ai: str = ""  # which AI arm (a run may have several: a taker and a maker)
    periods: int
    mean_diff_bp_day: float | None
    ci_low_bp_day: float | None
    ci_high_bp_day: float | None
    confidence: float
    verdict: str


class Leaderboard(BaseModel):
    run_id: str
    rows: list[StrategyRow]
    comparison: Interval | None
    sentence: str | None  # the same sentence `arena report` prints
    intervals: list[Interval]  # AI vs each classical strategy and buy-and-hold
    # `arena report`'s in/out-of-sample line, from the run's own start record (None: unknown).
    sample: str | None = None


class SeriesPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    t: int  # ms since the epoch (what the charts take)
    y: float


class EquitySeries(BaseModel):
    strategy: str
    family: str
    points: list[SeriesPoint]


class EquityCurves(BaseModel):
    run_id: str
    capital: float | None
    series: list[EquitySeries]


class Fill(BaseModel):
    id: str
    strategy: str
    ts_ns: int
    side: str
    price: float
    qty: float
    fee: float
    realised: float
    is_maker: bool | None = None


class Position(BaseModel):
    strategy: str
    family: str
    qty: float
    avg_price: float
    mark: float
    equity: float
    realised: float
    unrealised: float
    fees: float
    ts_ns: int


class Candle(BaseModel):
    t: int  # bucket start, ms
    o: float
    h: float
    l: float  # noqa: E741 (the OHLC convention)
    c: float


class PositionPoint(BaseModel):
    t: int
    qty: float
    pnl: float


class StrategyDetail(BaseModel):
    run_id: str
    strategy: str
    family: str
    candles: list[Candle]  # the marked price, bucketed to the chart's width
    fills: list[Fill]  # entries and exits, oldest first (capped)
    position: list[PositionPoint]
    row: StrategyRow | None
    risk_events: list[RiskEvent]
    # Mean fill markouts at 1/5/15 s with their counts and intervals (``arena report``'s own
    # model); None before any fill's markout is journaled.
    markouts: Markouts | None = None


class Prediction(BaseModel):
    ts_ns: int
    base_price: float
    predicted_price: float | None
    path: list[float]  # forecast prices 1..horizon seconds ahead
    target_ts_ns: int
    realised_price: float | None
    model_version: str | None


class Accuracy(BaseModel):
    resolved: int
    mae_bps: float | None
    persistence_mae_bps: float | None
    skill: float | None  # 1 − MSE/MSE(persistence) (cryptoarena.model.skill)
    mae_skill: float | None = None  # 1 − MAE/MAE(persistence), same forecasts
    hit_rate: float | None  # direction right, on moves ≠ 0
    hit_ci_low: float | None
    hit_ci_high: float | None


class Forecasts(BaseModel):
    run_id: str
    predictions: list[Prediction]  # oldest first
    prices: list[SeriesPoint]  # realised prices over the same span
    accuracy: Accuracy
    model_version: str | None


class ModelVersion(BaseModel):
    version: str
    aliases: list[str]
    created_ms: int | None
    gate: str | None  # the promotion gate's reason
    promotion: str | None  # how @champion was set: gate | bootstrap | forced
    # What happened when it was crowned (model.champions.promotion_message), e.g. "made bootstrap
    # @champion because the registry had none, although the gate refused it (refused: …)".
    promotion_message: str | None = None
    metrics: dict[str, float]
    run_id: str | None
    train_first: str | None = None  # the training split's first and last bar (UTC, ISO)
    train_last: str | None = None


class DriftStatus(BaseModel):
    checked_ms: int | None
    model_version: str | None
    should_retrain: bool | None
    reasons: str | None
    run_id: str | None
    run_url: str | None


class Models(BaseModel):
    pending: bool  # a registry read (the first, or after a change) is under way: ask again
    available: bool
    error: str | None
    name: str
    versions: list[ModelVersion]
    drift: DriftStatus | None
    events: list[dict[str, Any]]  # the run's model events (health, model_in_use)


class RiskEvent(BaseModel):
    id: str
    ts_ns: int
    type: str
    strategy: str | None
    reason: str


class KillState(BaseModel):
    engaged: bool
    reason: str | None = None
    by: str | None = None
    ts_ns: int | None = None
    token_configured: bool


class KillRequest(BaseModel):
    action: Literal["engage", "release"]
    token: str = Field(default="", max_length=512)
    reason: str = Field(default="dashboard kill switch", max_length=200)


class RiskView(BaseModel):
    run_id: str | None
    limits: dict[str, Any]
    halted: dict[str, str]
    vetoes: dict[str, int]
    kill: KillState


class BotStatus(BaseModel):
    strategy: str
    family: str
    state: Literal["running", "halted", "killed", "stopped"]
    halted: str | None


class Status(BaseModel):
    run: RunInfo | None
    bots: list[BotStatus]
    data_time_ns: int | None  # the newest market time journaled
    lag_s: float | None  # wall clock minus data time (meaningful for live runs)
    forecast_age_s: float | None  # data time minus the newest forecast
    model_version: str | None
    # Whether the run traded data the model in use was trained on (from the registry).
    sample: str | None = None
    kill: KillState


class SitePage(BaseModel):
    name: str
    title: str


class SitePageBody(SitePage):
    html: str


StrategyDetail.model_rebuild()
