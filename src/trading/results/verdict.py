"""One verdict, stated once: the AI arm(s) against the classical strategies, after fees.

The headline compares an AI arm's per-snapshot returns with the mean of the classical
strategies' (an equal-weight classical portfolio), with a paired moving-block bootstrap CI;
the sentence is chosen from that interval only (an interval that excludes zero is never called
"not significant"). **One unit everywhere: basis points of capital per day** (``bp/day``: the
mean per-snapshot difference × snapshots per day; a mean scales linearly, so this is the same
evidence in a unit a reader can compare across runs and with a season's per-day figures). On a
run shorter than a day the sentence says so, and from how many minutes the figure is scaled.

With several AI arms the headline is the one with the highest P&L among those that traded, and
it says so: its interval is widened for that pick to 1 − α/k (Bonferroni, the first and
strictest step of Holm's procedure over the k arms), and the Holm-adjusted p-value of every AI
arm against the classical mean is kept; every other AI arm's own 95 % interval is in the
sentence too. Every AI arm is also compared with each classical strategy and with the best
classical one (highest P&L). Reference arms (buy-and-hold, the naive forecaster) are neither
side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from cryptoarena.trading.results.model import UNIT, UNIT_WORDS, Selection, Verdict, VerdictCase
from cryptoarena.trading.results.model import Comparison as PairComparison
from cryptoarena.trading.results.significance import (
    block_length,
    bootstrap_column_means,
    bootstrap_p_value,
    deflated_sharpe,
    holm,
    percentile_ci,
)
from cryptoarena.trading.results.stats import SECONDS_PER_DAY, period_returns

MIN_PERIODS = 30  # fewer returns than this give no verdict at all


@dataclass(frozen=True)
class Arm:
    """One strategy's aligned per-period returns and what the verdict needs to know of it."""

    name: str
    family: str
    returns: np.ndarray
    pnl: float
    fills: int


@dataclass(frozen=True)
class VerdictConfig:
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 7


@dataclass(frozen=True)
class OtherArm:
    """An AI arm beside the headline, with its own interval (for the sentence)."""

    name: str
    diff: float
    ci: tuple[float, float]
    traded: bool


def fmt_bp(x: float) -> str:
    """Three significant digits for small differences (often well below 1 bp/day), whole
    numbers with thousands separators from 100 up (never scientific notation)."""
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"
    return "0" if text in ("-0", "0") else text


_fmt = fmt_bp


def _interval(ci: tuple[float, float], confidence: float) -> str:
    return f"{confidence * 100:.4g} % CI [{_fmt(ci[0])}, {_fmt(ci[1])}] {UNIT}"


def _zero(ci: tuple[float, float]) -> str:
    return "excludes zero" if ci[0] > 0.0 or ci[1] < 0.0 else "includes zero"


def _span_words(span_s: float) -> str:
    """A run's length in words: seconds under a minute, whole minutes beyond."""
    if span_s < 60:
        return f"{span_s:.0f} seconds"
    minutes = round(span_s / 60)
    return "1 minute" if minutes == 1 else f"{minutes:,} minutes"


def scaled_note(span_s: float | None) -> str:
    """Said after every verdict in bp/day on a run shorter than a day: the figure is a short
    run's mean scaled up to a day, not a day's result (an 8-minute demo read +1,533 bp/day)."""
    if span_s is None or span_s >= SECONDS_PER_DAY:
        return ""
    span = _span_words(span_s)
    return (
        f" The run covers {span} of returns, less than a day: every bp/day here is scaled up "
        f"from those {span}, not measured over a day."
    )


def _others(others: Sequence[OtherArm], confidence: float) -> str:
    parts = []
    for o in others:
        idle = "" if o.traded else " (did not trade)"
        parts.append(
            f"{o.name}{idle} {'+' if o.diff > 0 else ''}{_fmt(o.diff)} {UNIT} "
            f"({_interval(o.ci, confidence)}, {_zero(o.ci)})"
        )
    if not parts:
        return ""
    label = "Other AI arm" if len(parts) == 1 else "Other AI arms"
    return f" {label} against the classical mean: " + "; ".join(parts) + "."


def sentence(
    case: VerdictCase,
    *,
    ai: str | None = None,
    diff: float | None = None,
    ci: tuple[float, float] | None = None,
    confidence: float = 0.95,
    headline_confidence: float | None = None,
    periods: int = 0,
    arms: int = 1,
    others: Sequence[OtherArm] = (),
    span_s: float | None = None,
) -> str:
    """The verdict in words, from the numbers only (differences in bp/day; ``span_s``: the
    seconds of returns they come from, said when less than a day)."""
    if case == "no_ai_arm":
        return "No verdict: the run has no AI arm."
    if case == "no_classical_arm":
        return "No verdict: the run has no classical strategy to compare with."
    if case == "too_little_data":
        return f"No verdict yet: {periods} periods of returns, at least {MIN_PERIODS} are needed."
    assert diff is not None and ci is not None
    lo, hi = ci
    level = headline_confidence or confidence
    interval = _interval(ci, level)
    if arms > 1:
        interval += f", widened for picking 1 of {arms} arms (Holm)"
    per = f"{UNIT} ({UNIT_WORDS})"
    significant = lo > 0.0 or hi < 0.0
    tail = _others(others, confidence) + scaled_note(span_s)
    if case == "ai_flat":
        subject = "The AI arm did not trade" if arms == 1 else f"None of the {arms} AI arms traded"
        if significant:
            word = "beat" if lo > 0.0 else "trailed"
            return (
                f"{subject}: standing aside {word} the classical mean by {_fmt(abs(diff))} "
                f"{per} ({interval}, excludes zero).{tail}"
            )
        word = "beat" if diff > 0.0 else "trailed" if diff < 0.0 else "matched"
        by = f" by {_fmt(abs(diff))} {per}" if diff != 0.0 else ""
        return (
            f"{subject}: standing aside {word} the classical mean{by}, "
            f"within noise ({interval} includes zero).{tail}"
        )
    best = f" (best of {arms} AI arms by P&L)" if arms > 1 else ""
    if case == "ai_ahead":
        return (
            f"AI arm {ai}{best} beat the classical mean by {_fmt(abs(diff))} {per} "
            f"after fees ({interval}, excludes zero).{tail}"
        )
    if case == "ai_behind":
        return (
            f"AI arm {ai}{best} trailed the classical mean by {_fmt(abs(diff))} {per} "
            f"after fees ({interval}, excludes zero).{tail}"
        )
    word = "ahead of" if diff > 0.0 else "behind" if diff < 0.0 else "level with"
    return (
        f"Not significant yet: AI arm {ai}{best} is {_fmt(abs(diff))} {per} {word} the "
        f"classical mean after fees, but the {interval} includes zero.{tail}"
    )


def aligned_returns(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-period returns of each curve (ts_ns, equity) on the snapshot times they share."""
    if not curves:
        return {}
    common: np.ndarray | None = None
    for ts, _ in curves.values():
        common = np.asarray(ts) if common is None else np.intersect1d(common, ts)
    assert common is not None
    out: dict[str, np.ndarray] = {}
    for name, (ts, eq) in curves.items():
        ts_arr = np.asarray(ts)
        if len(common) == len(ts_arr):
            out[name] = period_returns(eq)
            continue
        keep = np.isin(ts_arr, common)
        out[name] = period_returns(np.asarray(eq)[keep])
    return out


def decide(
    arms: Sequence[Arm], *, period_s: float | None, config: VerdictConfig | None = None
) -> Verdict:
    """The verdict from aligned per-period returns (every arm's ``returns`` the same length,
    one every ``period_s`` seconds: what turns them into bp/day)."""
    cfg = config or VerdictConfig()
    ai = [a for a in arms if a.family == "ai"]
    classical = [a for a in arms if a.family == "classical"]
    by_name = {a.name: a.returns for a in arms}
    selection = _selection(by_name)
    if not ai:
        return Verdict(sentence=sentence("no_ai_arm"), case="no_ai_arm", selection=selection)
    if not classical:
        return Verdict(
            sentence=sentence("no_classical_arm"), case="no_classical_arm", selection=selection
        )
    n = min(len(a.returns) for a in (*ai, *classical))
    traded = [a for a in ai if a.fills > 0]
    head = max(traded, key=lambda a: a.pnl) if traded else ai[0]
    # The headline was picked from these: its interval is adjusted for the choice.
    family = traded or ai
    k = len(family)
    best_classical = max(classical, key=lambda a: a.pnl)
    if n < MIN_PERIODS or period_s is None or not period_s > 0:
        return Verdict(
            sentence=sentence("too_little_data", periods=n),
            case="too_little_data",
            ai=head.name,
            ai_arms=k,
            ai_traded=bool(traded),
            best_classical=best_classical.name,
            periods=n,
            period_s=period_s,
            selection=selection,
        )
    per_day = SECONDS_PER_DAY / period_s
    columns = [*ai, *classical]
    matrix = np.column_stack([a.returns[:n] for a in columns]) * 1e4 * per_day  # bp/day
    k_ai = len(ai)
    classical_mean = matrix[:, k_ai:].mean(axis=1)
    # The block length from the headline differences (AI − classical mean): their dependence is
    # what the interval must respect.
    block = block_length(matrix[:, :k_ai] - classical_mean[:, None])
    draws = bootstrap_column_means(matrix, block=block, resamples=cfg.resamples, seed=cfg.seed)
    draws_classical_mean = draws[:, k_ai:].mean(axis=1)
    means = matrix.mean(axis=0)
    # Each AI arm against the classical mean: its own interval and p-value, Holm over the arms.
    vs_mean = {arm.name: draws[:, i] - draws_classical_mean for i, arm in enumerate(ai)}
    p_raw = {a.name: bootstrap_p_value(vs_mean[a.name]) for a in ai}
    p_adj = holm({a.name: p_raw[a.name] for a in family})
    comparisons: list[PairComparison] = []
    for i, arm in enumerate(ai):
        rows = [("classical mean", means[k_ai:].mean(), draws_classical_mean)]
        for j, c in enumerate(classical, start=k_ai):
            label = c.name if c is not best_classical else f"best classical ({c.name})"
            rows.append((label, means[j], draws[:, j]))
        for label, bench_mean, bench_draws in rows:
            diff_draws = draws[:, i] - bench_draws
            ci = percentile_ci(diff_draws, cfg.confidence)
            headline_row = label == "classical mean"
            comparisons.append(
                PairComparison(
                    ai=arm.name,
                    versus=label,
                    mean_diff_bp_day=float(means[i] - bench_mean),
                    ci=ci,
                    significant=ci[0] > 0.0 or ci[1] < 0.0,
                    p_value=p_raw[arm.name] if headline_row else bootstrap_p_value(diff_draws),
                    p_holm=p_adj.get(arm.name) if headline_row else None,
                )
            )
    i_head = ai.index(head)
    diff = float(means[i_head] - means[k_ai:].mean())
    headline_confidence = 1.0 - (1.0 - cfg.confidence) / k
    ci = percentile_ci(vs_mean[head.name], headline_confidence)
    others = [
        OtherArm(
            a.name,
            float(means[i] - means[k_ai:].mean()),
            percentile_ci(vs_mean[a.name], cfg.confidence),
            a.fills > 0,
        )
        for i, a in enumerate(ai)
        if a is not head
    ]
    case: VerdictCase
    if not traded:
        case = "ai_flat"
    elif ci[0] > 0.0:
        case = "ai_ahead"
    elif ci[1] < 0.0:
        case = "ai_behind"
    else:
        case = "inconclusive"
    return Verdict(
        sentence=sentence(
            case,
            ai=head.name,
            diff=diff,
            ci=ci,
            confidence=cfg.confidence,
            headline_confidence=headline_confidence,
            periods=n,
            arms=k,
            others=others,
            span_s=n * period_s,
        ),
        case=case,
        ci=ci,
        mean_diff_bp_day=diff,
        confidence=cfg.confidence,
        headline_confidence=headline_confidence,
        ai=head.name,
        ai_arms=k,
        ai_traded=bool(traded),
        best_classical=best_classical.name,
        periods=n,
        period_s=period_s,
        block_length=block,
        resamples=cfg.resamples,
        comparisons=comparisons,
        selection=selection,
    )


def _selection(returns: Mapping[str, np.ndarray]) -> Selection | None:
    d = deflated_sharpe(dict(returns))
    if d is None:
        return None
    return Selection(
        best=d.best, trials=d.trials, sharpe=d.sharpe, threshold=d.threshold, dsr=d.dsr
    )


# -- the single-call form kept for older callers (and issue #15's memory bench) ---------------


@dataclass(frozen=True)
class Comparison:
    """AI minus classical mean: mean return difference (bp/day) with a bootstrap CI."""

    ai: str
    periods: int
    mean_diff_bp_day: float
    ci_low_bp_day: float
    ci_high_bp_day: float
    confidence: float
    verdict: str
    block: int = 0


def compare_ai_vs_classical(
    ai_equity: np.ndarray,
    classical_equity: Sequence[np.ndarray],
    *,
    ai_name: str = "ai",
    ai_fills: int = 1,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 7,
    period_s: float = 5.0,
) -> Comparison:
    """Paired moving-block bootstrap of per-period return differences (AI − mean classical)."""
    arms = [Arm(ai_name, "ai", period_returns(ai_equity), 0.0, ai_fills)]
    arms += [
        Arm(f"classical_{i}", "classical", period_returns(c), 0.0, 1)
        for i, c in enumerate(classical_equity)
    ]
    v = decide(arms, period_s=period_s, config=VerdictConfig(confidence, resamples, seed))
    lo, hi = v.ci if v.ci is not None else (math.nan, math.nan)
    mean = v.mean_diff_bp_day if v.mean_diff_bp_day is not None else math.nan
    return Comparison(ai_name, v.periods, mean, lo, hi, confidence, v.sentence, v.block_length or 0)
