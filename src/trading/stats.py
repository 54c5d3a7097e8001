"""Per-strategy statistics from equity curves and books, and AI vs classical with a bootstrap.

Everything here is pure (numpy in, numbers out) so the dashboard and ``arena report`` compute
the same figures. Ratios are annualised from the snapshot interval; over a short run they say
little, which is why the AI-vs-classical comparison carries a confidence interval and says
"not significant yet" until the interval excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

SECONDS_PER_YEAR = 365.0 * 86_400.0


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
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float
    exposure: float  # share of snapshots holding a position
    snapshots: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _annualiser(period_s: float) -> float:
    return math.sqrt(SECONDS_PER_YEAR / period_s) if period_s > 0 else float("nan")


def sharpe(returns: np.ndarray, period_s: float) -> float | None:
    if len(returns) < 2:
        return None
    sd = float(np.std(returns, ddof=1))
    if sd == 0.0:
        return None
    return float(np.mean(returns)) / sd * _annualiser(period_s)


def sortino(returns: np.ndarray, period_s: float) -> float | None:
    if len(returns) < 2:
        return None
    downside = np.minimum(returns, 0.0)
    dd = float(np.sqrt(np.mean(downside**2)))
    if dd == 0.0:
        return None
    return float(np.mean(returns)) / dd * _annualiser(period_s)


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


def strategy_stats(
    strategy: str,
    family: str,
    curve: Sequence[Mapping[str, Any]],
    capital: float,
) -> StrategyStats:
    """``curve``: the strategy's equity snapshots in time order (journal ``equity`` docs)."""
    equity = np.array([float(doc["equity"]) for doc in curve], dtype=np.float64)
    ts = np.array([int(doc["ts_ns"]) for doc in curve], dtype=np.int64)
    last: Mapping[str, Any] = curve[-1] if curve else {}
    exact: Mapping[str, Any] = last.get("exact", {}) or {}
    period_s = float(np.median(np.diff(ts))) / 1e9 if len(ts) > 1 else 0.0
    span_s = float(ts[-1] - ts[0]) / 1e9 if len(ts) > 1 else 0.0
    rets = period_returns(equity)
    trips = int(last.get("round_trips", 0))
    wins = int(last.get("wins", 0))
    gross_profit = float(exact.get("gross_profit", 0) or 0)
    gross_loss = float(exact.get("gross_loss", 0) or 0)
    eq = float(equity[-1]) if len(equity) else capital
    qty = np.array([float(doc.get("qty", 0.0)) for doc in curve])
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
        sharpe=sharpe(rets, period_s),
        sortino=sortino(rets, period_s),
        calmar=calmar(equity, span_s),
        max_drawdown=max_drawdown(equity),
        exposure=float(np.mean(qty != 0.0)) if len(qty) else 0.0,
        snapshots=len(curve),
    )


@dataclass(frozen=True)
class Comparison:
    """AI minus classical: mean per-period return difference (bps) with a bootstrap CI."""

    ai: str
    periods: int
    mean_diff_bps: float
    ci_low_bps: float
    ci_high_bps: float
    confidence: float
    verdict: str


def compare_ai_vs_classical(
    ai_equity: np.ndarray,
    classical_equity: Sequence[np.ndarray],
    *,
    ai_name: str = "ai",
    confidence: float = 0.95,
    resamples: int = 2000,
    block: int = 12,
    seed: int = 7,
) -> Comparison:
    """Paired moving-block bootstrap of per-period return differences (AI − mean classical).

    Blocks keep the short-range dependence of returns; the verdict is "not significant yet"
    unless the interval excludes zero.
    """
    ai_r = period_returns(ai_equity)
    n = min([len(ai_r), *(len(period_returns(c)) for c in classical_equity)])
    if n < 2 * block or not classical_equity:
        return Comparison(ai_name, n, float("nan"), float("nan"), float("nan"), confidence,
                          "not significant yet (too little data)")  # fmt: skip
    classical = np.mean([period_returns(c)[:n] for c in classical_equity], axis=0)
    diff = (ai_r[:n] - classical) * 1e4
    rng = np.random.default_rng(seed)
    blocks = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(resamples, blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(resamples, -1)[:, :n]
    means = diff[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    mean = float(diff.mean())
    if lo > 0:
        verdict = f"AI ahead ({confidence:.0%} CI excludes 0)"
    elif hi < 0:
        verdict = f"classical ahead ({confidence:.0%} CI excludes 0)"
    else:
        verdict = "not significant yet"
    return Comparison(ai_name, n, mean, float(lo), float(hi), confidence, verdict)
