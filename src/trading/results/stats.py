"""Per-strategy statistics from equity curves and books.

Everything here is pure (numpy in, numbers out) so the dashboard and ``arena report`` compute
the same figures. The report's Sharpe and Sortino are **per day**, from daily returns (the
equity at the last snapshot of each UTC day), never annualised and never scaled up from
sub-day snapshots (a 5 s Sharpe × √(seconds per year) turned noise into −498); a run that
touches fewer than three UTC days has none (its per-period PSR, beside them, needs no scaling).
Calmar (annualised compound return / maximum drawdown) is given only over a day or more. The
definitions match empyrical's (checked against it in the tests): Sharpe with the sample standard
deviation (ddof=1), Sortino with the root mean square of the negative returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_YEAR = 365.0 * SECONDS_PER_DAY
NS_PER_DAY = 86_400_000_000_000
MIN_DAILY_RETURNS = 2  # a per-day Sharpe needs at least two daily returns


@dataclass(frozen=True)
class StrategyStats:
    strategy: str
    family: str
    equity: float
    pnl: float
    return_pct: float
    realised: float
    unrealised: float
    fees: float
    fills: int
    round_trips: int
    win_rate: float | None
    profit_factor: float | None
    expectancy: float | None
    sharpe_daily: float | None  # per day, from daily returns (not annualised)
    sortino_daily: float | None
    calmar: float | None
    max_drawdown: float
    exposure: float  # share of snapshots holding a position
    snapshots: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CurveStats:
    """What an equity curve alone says (the book's counters come from the read model)."""

    sharpe_daily: float | None
    sortino_daily: float | None
    calmar: float | None
    max_drawdown: float
    exposure: float
    snapshots: int
    period_s: float
    span_s: float
    days: int  # daily returns behind the per-day ratios


def period_returns(equity: np.ndarray) -> np.ndarray:
    equity = np.asarray(equity, dtype=np.float64)
    if len(equity) < 2:
        return np.empty(0)
    return np.diff(equity) / equity[:-1]


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall, as a fraction of the peak (0 when it never fell)."""
    equity = np.asarray(equity, dtype=np.float64)
    if len(equity) == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max((peaks - equity) / peaks))


def drawdown_curve(equity: np.ndarray) -> np.ndarray:
    """Fall from the running peak at each point, as a (non-negative) fraction of the peak."""
    equity = np.asarray(equity, dtype=np.float64)
    if len(equity) == 0:
        return np.empty(0)
    peaks = np.maximum.accumulate(equity)
    return np.asarray((peaks - equity) / peaks, dtype=np.float64)


def _annualiser(period_s: float) -> float:
    return math.sqrt(SECONDS_PER_YEAR / period_s) if period_s > 0 else float("nan")


def per_period_sharpe(returns: np.ndarray) -> float | None:
    """Mean over sample standard deviation of the returns, in their own period (not scaled)."""
    if len(returns) < 2:
        return None
    sd = float(np.std(returns, ddof=1))
    if sd == 0.0:
        return None
    return float(np.mean(returns)) / sd


def per_period_sortino(returns: np.ndarray) -> float | None:
    if len(returns) < 2:
        return None
    downside = np.minimum(returns, 0.0)
    dd = float(np.sqrt(np.mean(downside**2)))
    if dd == 0.0:
        return None
    return float(np.mean(returns)) / dd


def sharpe(returns: np.ndarray, period_s: float) -> float | None:
    """Annualised from ``period_s`` (empyrical's definition; the report uses per-day figures)."""
    sr = per_period_sharpe(returns)
    return None if sr is None else sr * _annualiser(period_s)


def sortino(returns: np.ndarray, period_s: float) -> float | None:
    sr = per_period_sortino(returns)
    return None if sr is None else sr * _annualiser(period_s)


def daily_returns(ts_ns: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """Returns from one UTC day's close (its last snapshot) to the next day's: a run touching
    d UTC days has d − 1 of them (the first day only gives the close the second starts from)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if len(ts) < 2:
        return np.empty(0)
    day = ts // NS_PER_DAY
    last_of_day = np.append(day[1:] != day[:-1], True)
    return period_returns(eq[last_of_day])


def calmar(equity: np.ndarray, span_s: float) -> float | None:
    mdd = max_drawdown(equity)
    if len(equity) < 2 or mdd == 0.0 or span_s <= 0 or equity[0] <= 0:
        return None
    total = equity[-1] / equity[0]
    if total <= 0:
        return None
    exponent = math.log(total) * SECONDS_PER_YEAR / span_s
    if abs(exponent) > 700:  # annualising minutes of data overflows: no meaningful ratio
        return None
    return float((math.exp(exponent) - 1.0) / mdd)


def curve_stats(ts_ns: np.ndarray, equity: np.ndarray, qty: np.ndarray | None = None) -> CurveStats:
    """Ratios of one equity curve (snapshot times in ns, equity, optional position size)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    period_s = float(np.median(np.diff(ts))) / 1e9 if len(ts) > 1 else 0.0
    span_s = float(ts[-1] - ts[0]) / 1e9 if len(ts) > 1 else 0.0
    daily = daily_returns(ts, eq)
    enough = len(daily) >= MIN_DAILY_RETURNS
    held = np.asarray(qty, dtype=np.float64) if qty is not None else np.zeros(0)
    return CurveStats(
        sharpe_daily=per_period_sharpe(daily) if enough else None,
        sortino_daily=per_period_sortino(daily) if enough else None,
        calmar=calmar(eq, span_s) if span_s >= SECONDS_PER_DAY else None,
        max_drawdown=max_drawdown(eq),
        exposure=float(np.mean(held != 0.0)) if len(held) else 0.0,
        snapshots=len(eq),
        period_s=period_s,
        span_s=span_s,
        days=len(daily),
    )


def strategy_stats(
    strategy: str,
    family: str,
    curve: Sequence[Mapping[str, Any]],
    capital: float,
) -> StrategyStats:
    """``curve``: the strategy's equity snapshots in time order (journal ``equity`` docs)."""
    equity = np.array([float(doc["equity"]) for doc in curve], dtype=np.float64)
    ts = np.array([int(doc["ts_ns"]) for doc in curve], dtype=np.int64)
    qty = np.array([float(doc.get("qty", 0.0)) for doc in curve])
    last: Mapping[str, Any] = curve[-1] if curve else {}
    return _combine(strategy, family, last, capital, curve_stats(ts, equity, qty))


def _combine(
    strategy: str, family: str, last: Mapping[str, Any], capital: float, cs: CurveStats
) -> StrategyStats:
    exact: Mapping[str, Any] = last.get("exact", {}) or {}
    trips = int(last.get("round_trips", 0))
    wins = int(last.get("wins", 0))
    gross_profit = float(exact.get("gross_profit", 0) or 0)
    gross_loss = float(exact.get("gross_loss", 0) or 0)
    eq = float(last.get("equity", capital))
    return StrategyStats(
        strategy=strategy,
        family=family,
        equity=eq,
        pnl=eq - capital,
        return_pct=(eq / capital - 1.0) * 100 if capital else 0.0,
        realised=float(last.get("realised", 0.0)),
        unrealised=float(last.get("unrealised", 0.0)),
        fees=float(last.get("fees", 0.0)),
        fills=int(last.get("fills", 0)),
        round_trips=trips,
        win_rate=wins / trips if trips else None,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        expectancy=(gross_profit - gross_loss) / trips if trips else None,
        sharpe_daily=cs.sharpe_daily,
        sortino_daily=cs.sortino_daily,
        calmar=cs.calmar,
        max_drawdown=cs.max_drawdown,
        exposure=cs.exposure,
        snapshots=cs.snapshots,
    )


def stats_from_latest(
    strategy: str, family: str, latest: Mapping[str, Any], capital: float, cs: CurveStats
) -> StrategyStats:
    """Counters from the latest snapshot (read model), ratios from the curve."""
    return _combine(strategy, family, latest, capital, cs)
