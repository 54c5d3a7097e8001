"""Every decision of a backtest's span, computed before its loop.

A strategy's ``on_bar`` depends only on the bars (never on fills, books or the clock), so over
recorded bars each strategy's whole series of decisions can be computed first: per bar its
target (NaN for None: keep) and its *decision class*, the ``(target, reason with its numbers
masked)`` pair the decision journal deduplicates on (``Decider``). The driver then only does
work on bars where a class changes or an order is due.

Two ways to get them, with the same result:

- **The strategy's twin** when its class has one (``Strategy.span_signals``, next to its
  ``on_bar`` in its own file; strategies/span.py): the rule over the whole frame at once. This
  module only adds the warm-up and the decision classes; it states no rule itself.
- **Generic** (no twin): the strategy's own guarded step (``StrategyRunner.step``) on each bar
  in a tight loop, without the engine around it.

tests/unit/test_span_signals.py checks both against the strategy stepped bar by bar.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from cryptoarena.data.records import Bar, bars_to_records
from cryptoarena.trading.engine.runner import Decision, StrategyCrash, StrategyRunner
from cryptoarena.trading.strategies.base import StrategyContext
from cryptoarena.trading.strategies.span import SpanSignals

_NUMBERS = re.compile(r"[-+]?\d[\d.,]*")  # the Decider's mask (decide.py)
_DIGITS = str.maketrans("0123456789", "##########")
CHUNK = 16_384  # bars turned into Bar records at a time (bounded memory over years)


@dataclass
class Signals:
    """One strategy's decisions over a span of its own bars (index ``j``)."""

    runner: StrategyRunner
    ts: np.ndarray  # int64 open time of each of the strategy's bars
    target: np.ndarray  # float64; NaN: None (keep what it has)
    key: np.ndarray  # int32 decision class; equal classes are not journaled again
    reason_at: Callable[[int], str]
    warmup: int  # bars 0..warmup-1 are warm-up decisions
    crash_at: int = -1  # the bar whose step raised (no decisions from it on), or -1
    crash: StrategyCrash | None = None
    classes: dict[tuple[float | None, str], int] = field(default_factory=dict)

    def decision(self, j: int) -> Decision:
        """The decision at bar ``j`` exactly as ``StrategyRunner.step`` returned it."""
        target = float(self.target[j])
        return Decision(
            self.runner.name,
            int(self.ts[j]),
            None if target != target else target,
            self.reason_at(j),
            j < self.warmup,
        )


def _class(classes: dict[tuple[float | None, str], int], target: float | None, masked: str) -> int:
    key = (target, masked)
    found = classes.get(key)
    if found is None:
        found = classes[key] = len(classes)
    return found


def compute_signals(runner: StrategyRunner, bars: pd.DataFrame, fee_rate: float) -> Signals:
    """``runner``'s decisions on every bar of ``bars`` (a bar frame of its own bar size)."""
    twin = runner.strategy.span_signals(bars)
    if twin is not None:
        return twin_signals(runner, bars, twin)
    return generic_signals(runner, bars, fee_rate)


def twin_signals(runner: StrategyRunner, bars: pd.DataFrame, twin: SpanSignals) -> Signals:
    """Signals from a strategy's twin: its targets, the warm-up masked, one decision class per
    code (a code's reasons differ only in their numbers)."""
    n = len(bars)
    warm = min(runner.warmup_bars, n)
    target = twin.target.astype(np.float64, copy=True)
    target[:warm] = np.nan
    classes: dict[tuple[float | None, str], int] = {}
    key = np.empty(n, dtype=np.int32)
    key[:warm] = _class(classes, None, "warming up #/#")
    rest = np.asarray(twin.code[warm:])
    by_code: dict[int, int] = {}
    for c in np.unique(rest).tolist():
        j = warm + int(np.argmax(rest == c))
        t = float(twin.target[j])
        by_code[c] = _class(classes, None if t != t else t, _NUMBERS.sub("#", twin.reason(j)))
    if by_code:
        lookup = np.full(max(by_code) + 1, -1, dtype=np.int32)
        for c, k in by_code.items():
            lookup[c] = k
        key[warm:] = lookup[rest]

    def reason_at(j: int) -> str:
        if j < warm:
            return f"warming up {j + 1}/{runner.warmup_bars}"
        return twin.reason(j)

    # The strategy object itself saw none of these bars: leave its runner where a run of ``n``
    # bars would have (bars seen), for anything that reads it afterwards.
    runner.bars_seen = n
    ts = bars["ts"].to_numpy(np.int64)
    return Signals(runner, ts, target, key, reason_at, warm, classes=classes)


def generic_signals(runner: StrategyRunner, bars: pd.DataFrame, fee_rate: float) -> Signals:
    """The strategy's own step on each bar (the incremental path), remembered."""
    n = len(bars)
    ts = bars["ts"].to_numpy(np.int64)
    target = np.full(n, np.nan)
    key = np.zeros(n, np.int32)
    classes: dict[tuple[float | None, str], int] = {}
    reasons: dict[int, str] = {}
    bar_ns = runner.bar_ns
    last_reason: str | None = None
    last_digits = ""
    last_target: float | None = None
    last_key = -1
    crash_at, crash = -1, None
    for start in range(0, n, CHUNK):
        records: list[Bar] = bars_to_records(bars.iloc[start : start + CHUNK])
        for j, bar in enumerate(records, start):
            out = runner.step(bar, StrategyContext(now_ns=bar.ts + bar_ns, fee_rate=fee_rate))
            if isinstance(out, StrategyCrash):
                crash_at, crash = j, out
                break
            t, reason = out.target, out.reason
            if t is not None:
                target[j] = t
            if reason != last_reason or t != last_target:
                # Same digit positions means the same masked reason: the regex only runs when
                # the reason's shape changed.
                digits = reason.translate(_DIGITS)
                if digits != last_digits or t != last_target or last_key < 0:
                    k = _class(classes, t, _NUMBERS.sub("#", reason))
                    if k != last_key:
                        reasons[j] = reason  # kept where the class changes (journaled there)
                    last_key, last_digits = k, digits
                last_reason, last_target = reason, t
            key[j] = last_key
        if crash is not None:
            break
    starts = sorted(reasons)
    texts = [reasons[s] for s in starts]

    def reason_at(j: int) -> str:
        # The reason as of its last change (numbers included) at or before bar j.
        k = bisect_right(starts, j) - 1
        return texts[k] if k >= 0 else ""

    return Signals(runner, ts, target, key, reason_at, runner.warmup_bars, crash_at, crash, classes)
