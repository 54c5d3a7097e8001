"""Every decision of a bar backtest's span, computed before its loop.

A strategy's ``on_bar`` depends only on the bars (never on fills, books or the clock), so over
recorded klines each strategy's whole series of decisions can be computed first: per bar its
target (NaN for None: keep) and its *decision class*, the ``(target, reason with its numbers
masked)`` pair the decision journal deduplicates on (``Decider``). The per-bar driver
(``bar_drive.py``) then only does work on bars where a class changes or an order is due.

Two ways to get them, with the same result:

- **Vectorised** (``sma_cross``): TA-Lib computes the indicator series over the whole span in one
  call; the incremental indicator does the same arithmetic in the same order, so the values are
  bit-for-bit equal (tests/unit/test_bar_signals.py checks targets, classes and reasons against
  the strategy run bar by bar).
- **Generic** (every other kind): the strategy's own guarded step (``StrategyRunner.step``) on
  each bar in a tight loop, without the engine around it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from cryptoarena.data.records import Bar, bars_to_records
from cryptoarena.trading.runner import Decision, StrategyCrash, StrategyRunner
from cryptoarena.trading.strategies.base import StrategyContext

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
    vectorised = VECTORISED.get(runner.strategy.kind)
    if vectorised is not None:
        return vectorised(runner, bars)
    return generic_signals(runner, bars, fee_rate)


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


def _sma_cross(runner: StrategyRunner, bars: pd.DataFrame) -> Signals:
    import talib

    cfg = runner.strategy.config
    close = bars["close"].to_numpy(np.float64)
    n = len(close)
    fast = talib.SMA(close, cfg.fast) if n >= cfg.fast else np.full(n, np.nan)
    slow = talib.SMA(close, cfg.slow) if n >= cfg.slow else np.full(n, np.nan)
    warm = min(runner.warmup_bars, n)
    long_t = float(cfg.size)
    short_t = -float(cfg.size) if cfg.allow_short else 0.0
    classes: dict[tuple[float | None, str], int] = {}
    k_warm = _class(classes, None, "warming up #/#")
    k_none = _class(classes, None, "")
    k_long = _class(classes, long_t, "sma# # > sma# #")
    k_short = _class(classes, short_t, "sma# # < sma# #")
    up, down = fast > slow, fast < slow  # NaN compares False: no opinion yet
    target = np.where(up, long_t, np.where(down, short_t, np.nan))
    key = np.where(up, k_long, np.where(down, k_short, k_none)).astype(np.int32)
    target[:warm] = np.nan
    key[:warm] = k_warm

    def reason_at(j: int) -> str:
        if j < warm:
            return f"warming up {j + 1}/{runner.warmup_bars}"
        f, s = float(fast[j]), float(slow[j])
        if f > s:
            return f"sma{cfg.fast} {f:.2f} > sma{cfg.slow} {s:.2f}"
        if f < s:
            return f"sma{cfg.fast} {f:.2f} < sma{cfg.slow} {s:.2f}"
        return ""

    # The strategy object itself saw none of these bars: leave its runner where a run of
    # ``n`` bars would have (bars seen), for anything that reads it afterwards.
    runner.bars_seen = n
    ts = bars["ts"].to_numpy(np.int64)
    return Signals(runner, ts, target, key, reason_at, warm, classes=classes)


VECTORISED: dict[str, Callable[[StrategyRunner, pd.DataFrame], Signals]] = {
    "sma_cross": _sma_cross,
}
