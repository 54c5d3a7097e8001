"""The season's verdict from per-day paired differences, with its power in words.

Each UTC day is one observation: a strategy's P&L after fees that day in basis points of its
capital (bp/day, the unit of every run verdict). The AI arm minus the classical mean (and minus
each classical rival) is a paired difference per day; across days its mean gets a Student-t
interval (days are far less dependent than 5 s snapshots, so the day is the honest unit of
evidence). The intraday block bootstrap of each day's run stays beside it in the day blocks.
Power: how many days a paired t-test needs to detect a difference of a given size with 80 %
power at the 5 % level, from the day-to-day spread seen so far (normal approximation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from cryptoarena.trading.results.verdict import fmt_bp as _bp
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

POWER = 0.8
ALPHA = 0.05


class DayDiff(BaseModel):
    """One AI arm minus one benchmark across the season's days (bp/day)."""

    model_config = ConfigDict(frozen=True)

    ai: str
    versus: str  # a classical strategy or "classical mean"
    per_day: list[float]
    mean: float
    confidence: float
    ci: tuple[float, float] | None = None  # None under two days (no day-to-day spread)
    significant: bool = False
    sd: float | None = None
    days_needed: int | None = None  # for 80 % power at the detectable difference
    detect_bp_day: float | None = None


class SeasonVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    sentence: str
    power: str  # the power in words
    days: int
    headline: DayDiff | None = None
    comparisons: list[DayDiff] = []


def days_for_power(sd: float, detect: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """Days a two-sided paired test at ``alpha`` needs to see a mean difference ``detect`` with
    probability ``power`` when per-day differences spread by ``sd`` (normal approximation)."""
    from scipy.stats import norm  # ~60 MB: not for every importer of the season routes

    z = norm.ppf(1.0 - alpha / 2.0) + norm.ppf(power)
    return max(2, math.ceil((z * sd / detect) ** 2))


def paired(ai: str, versus: str, diffs: Sequence[float], confidence: float) -> DayDiff:
    from scipy.stats import t as student_t

    d = np.asarray(diffs, dtype=np.float64)
    mean = float(d.mean()) if len(d) else math.nan
    if len(d) < 2:
        return DayDiff(ai=ai, versus=versus, per_day=list(d), mean=mean, confidence=confidence)
    sd = float(d.std(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2.0, len(d) - 1)) * sd / math.sqrt(len(d))
    ci = (mean - half, mean + half)
    # The difference to detect: the one seen so far (or, if none, one day-to-day spread).
    detect = abs(mean) if mean != 0.0 else sd
    needed = days_for_power(sd, detect) if sd > 0 and detect > 0 else None
    return DayDiff(
        ai=ai,
        versus=versus,
        per_day=list(map(float, d)),
        mean=mean,
        ci=ci,
        confidence=confidence,
        significant=ci[0] > 0.0 or ci[1] < 0.0,
        sd=sd,
        days_needed=needed,
        detect_bp_day=detect,
    )


def power_words(d: DayDiff) -> str:
    if d.ci is None:
        return "Power: unknown until the season has two days (no day-to-day spread yet)."
    if d.days_needed is None or d.detect_bp_day is None:
        return "Power: the per-day differences do not vary; no estimate."
    more = max(0, d.days_needed - len(d.per_day))
    if more == 0:
        return (
            f"Power: {len(d.per_day)} days are enough to detect a difference of "
            f"{_bp(d.detect_bp_day)} bp/day with 80 % power."
        )
    return (
        f"Power: about {more:,} more days to detect a difference of {_bp(d.detect_bp_day)} "
        f"bp/day with 80 % power (day-to-day spread {_bp(d.sd or 0.0)} bp/day)."
    )


def season_verdict(
    returns_bp: dict[str, list[float]],
    families: dict[str, str],
    season_pnl: dict[str, float],
    fills: dict[str, int],
    confidence: float = 0.95,
) -> SeasonVerdict:
    """The verdict over days: ``returns_bp[strategy]`` is its P&L after fees per day, in bp of
    capital, one entry per day of the season (every strategy the same days)."""
    ai = [s for s in returns_bp if families.get(s) == "ai"]
    classical = [s for s in returns_bp if families.get(s) == "classical"]
    days = min((len(v) for v in returns_bp.values()), default=0)
    if not ai or not classical:
        missing = "AI arm" if not ai else "classical strategy"
        why = " (bar backtests leave the forecast strategy out)" if not ai else ""
        return SeasonVerdict(
            sentence=f"No season verdict: the season's runs have no {missing}{why}.",
            power="Power: no comparison to power.",
            days=days,
        )
    mean_classical = np.mean([returns_bp[c][:days] for c in classical], axis=0)
    traded = [a for a in ai if fills.get(a, 0) > 0]
    family = traded or ai
    head_name = max(family, key=lambda a: season_pnl.get(a, 0.0))
    k = len(family)
    comparisons: list[DayDiff] = []
    for a in ai:
        mine = np.asarray(returns_bp[a][:days])
        comparisons.append(paired(a, "classical mean", mine - mean_classical, confidence))
        for c in classical:
            comparisons.append(paired(a, c, mine - np.asarray(returns_bp[c][:days]), confidence))
    # The headline is picked from k arms: its interval is widened to 1 − α/k (Bonferroni-Holm).
    level = 1.0 - (1.0 - confidence) / k
    head = paired(
        head_name,
        "classical mean",
        np.asarray(returns_bp[head_name][:days]) - mean_classical,
        level,
    )
    pick = f" (best of {k} AI arms by season P&L, interval widened for the pick)" if k > 1 else ""
    if head.ci is None:
        sentence = (
            f"No season verdict yet: {days} day(s); the paired difference across days needs at "
            f"least two. AI arm {head_name}{pick} is {_bp(head.mean)} bp/day against the "
            "classical mean so far."
        )
    else:
        lo, hi = head.ci
        interval = f"{level * 100:.4g} % CI [{_bp(lo)}, {_bp(hi)}] bp/day over {days} days"
        if lo > 0.0 or hi < 0.0:
            word = "beat" if lo > 0.0 else "trailed"
            sentence = (
                f"Over {days} UTC days, AI arm {head_name}{pick} {word} the classical mean by "
                f"{_bp(abs(head.mean))} bp/day (basis points of capital per day) after fees "
                f"({interval}, excludes zero)."
            )
        else:
            word = "ahead of" if head.mean > 0 else "behind" if head.mean < 0 else "level with"
            sentence = (
                f"Not significant yet over {days} UTC days: AI arm {head_name}{pick} is "
                f"{_bp(abs(head.mean))} bp/day (basis points of capital per day) {word} the "
                f"classical mean after fees, but the {interval} includes zero."
            )
    return SeasonVerdict(
        sentence=sentence,
        power=power_words(head),
        days=days,
        headline=head,
        comparisons=comparisons,
    )
