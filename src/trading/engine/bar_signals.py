"""Every decision of a bar backtest's span, computed before its loop.

A strategy's ``on_bar`` depends only on the bars (never on fills, books or the clock), so over
recorded klines each strategy's whole series of decisions can be computed first: per bar its
target (NaN for None: keep) and its *decision class*, the ``(target, reason with its numbers
masked)`` pair the decision journal deduplicates on (``Decider``). The per-bar driver
(``bar_drive.py``) then only does work on bars where a class changes or an order is due.

Two ways to get them, with the same result:

- **Vectorised** (the classical kinds): each by its real incremental indicator run over the span
  in a tight loop (exact by construction; TA-Lib is a dev-only oracle, never imported at run
  time), with the strategy's rule applied to the series in numpy.
  tests/unit/test_bar_signals.py checks targets, classes and reasons against each strategy
  stepped bar by bar.
- **Generic** (any other kind): the strategy's own guarded step (``StrategyRunner.step``) on
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
from cryptoarena.trading.engine.runner import Decision, StrategyCrash, StrategyRunner
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
    from cryptoarena.trading.strategies.indicators import Sma

    cfg = runner.strategy.config
    close = bars["close"].to_numpy(np.float64)
    n = len(close)
    fast_sma, slow_sma = Sma(cfg.fast), Sma(cfg.slow)
    values = close.tolist()
    fast = _series([fast_sma.update(x) for x in values])
    slow = _series([slow_sma.update(x) for x in values])
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


# -- the other classical kinds: the real incremental indicator over the span (a tight loop,
# exact by construction), the strategy's rule on the series in numpy ---------------------------
NONE, LONG, SHORT, FLAT = 0, 1, 2, 3


def _assemble(
    runner: StrategyRunner,
    bars: pd.DataFrame,
    code: np.ndarray,
    reason: Callable[[int, int], str],
) -> Signals:
    """Signals from a per-bar rule outcome (NONE/LONG/SHORT/FLAT) and its reason."""
    cfg = runner.strategy.config
    n = len(code)
    warm = min(runner.warmup_bars, n)
    short_t = -float(cfg.size) if cfg.allow_short else 0.0
    values = np.array([np.nan, float(cfg.size), short_t, 0.0])
    target = values[code]
    target[:warm] = np.nan
    classes: dict[tuple[float | None, str], int] = {}
    k_warm = _class(classes, None, "warming up #/#")
    key = np.empty(n, dtype=np.int32)
    key[:warm] = k_warm
    # The class of a code: its target and its reason with the numbers masked (constant per code:
    # the formats print finite numbers only).
    by_code: dict[int, int] = {}
    rest = code[warm:]
    for c in np.unique(rest).tolist():
        j = warm + int(np.argmax(rest == c))
        t = None if c == NONE else float(values[c])
        by_code[c] = _class(classes, t, _NUMBERS.sub("#", reason(j, c)))
    lookup = np.array([by_code.get(c, -1) for c in range(4)], dtype=np.int32)
    key[warm:] = lookup[rest]

    def reason_at(j: int) -> str:
        if j < warm:
            return f"warming up {j + 1}/{runner.warmup_bars}"
        return reason(j, int(code[j]))

    runner.bars_seen = n
    ts = bars["ts"].to_numpy(np.int64)
    return Signals(runner, ts, target, key, reason_at, warm, classes=classes)


def _series(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _sided(ext: np.ndarray, cond_long_exit: np.ndarray, cond_short_exit: np.ndarray) -> np.ndarray:
    """Codes of a rule with a remembered side: LONG/SHORT where ``ext`` is +1/-1 (the side is
    set), FLAT on the first later bar whose exit condition for that side holds (the side is
    cleared), NONE elsewhere. Exit conditions must be False where the rule is not evaluated."""
    code = np.where(ext > 0, LONG, np.where(ext < 0, SHORT, NONE))
    signs = np.where(ext != 0, ext, 0)
    idx = np.where(ext != 0, np.arange(len(ext)), -1)
    last = np.maximum.accumulate(idx)
    side = np.where(last >= 0, signs[np.maximum(last, 0)], 0)
    cond = (ext == 0) & (((side > 0) & cond_long_exit) | ((side < 0) & cond_short_exit))
    hits = np.flatnonzero(cond)
    if hits.size:
        seg = last[hits]
        first = np.ones(hits.size, dtype=bool)
        first[1:] = seg[1:] != seg[:-1]
        code[hits[first]] = FLAT
    return code


def _macd(runner: StrategyRunner, bars: pd.DataFrame) -> Signals:
    from cryptoarena.trading.strategies.indicators import Ema

    cfg = runner.strategy.config
    fast, slow, signal = Ema(cfg.fast), Ema(cfg.slow), Ema(cfg.signal)
    macd: list[float | None] = []
    sig: list[float | None] = []
    for x in bars["close"].to_numpy(np.float64).tolist():
        f, s = fast.update(x), slow.update(x)
        if f is None or s is None:
            macd.append(None)
            sig.append(None)
            continue
        m = f - s
        macd.append(m)
        sig.append(signal.update(m))
    m_arr, s_arr = _series(macd), _series(sig)
    code = np.where(m_arr > s_arr, LONG, np.where(m_arr < s_arr, SHORT, NONE))

    def reason(j: int, c: int) -> str:
        if c == LONG:
            return f"macd {m_arr[j]:.3f} > signal {s_arr[j]:.3f}"
        if c == SHORT:
            return f"macd {m_arr[j]:.3f} < signal {s_arr[j]:.3f}"
        return ""

    return _assemble(runner, bars, code, reason)


def _rsi(runner: StrategyRunner, bars: pd.DataFrame) -> Signals:
    from cryptoarena.trading.strategies.indicators import Rsi

    cfg = runner.strategy.config
    rsi = Rsi(cfg.period)
    r = _series([rsi.update(x) for x in bars["close"].to_numpy(np.float64).tolist()])
    ext = np.where(r < cfg.lower, 1, np.where(r > cfg.upper, -1, 0))
    code = _sided(ext, r >= 50.0, r <= 50.0)

    def reason(j: int, c: int) -> str:
        if c == LONG:
            return f"rsi {r[j]:.1f} < {cfg.lower}"
        if c == SHORT:
            return f"rsi {r[j]:.1f} > {cfg.upper}"
        if c == FLAT:
            return f"rsi {r[j]:.1f} back through 50"
        return ""

    return _assemble(runner, bars, code, reason)


def _bollinger(runner: StrategyRunner, bars: pd.DataFrame) -> Signals:
    from cryptoarena.trading.strategies.indicators import RollingStd

    cfg = runner.strategy.config
    std = RollingStd(cfg.period)
    close = bars["close"].to_numpy(np.float64)
    stats = [std.update(x) for x in close.tolist()]
    mid = np.array([np.nan if v is None else v[0] for v in stats], dtype=np.float64)
    sd = np.array([np.nan if v is None else v[1] for v in stats], dtype=np.float64)
    valid = sd > 0.0  # NaN compares False: no stats yet
    upper, lower = mid + cfg.k * sd, mid - cfg.k * sd
    ext = np.where(valid & (close < lower), 1, np.where(valid & (close > upper), -1, 0))
    code = _sided(ext, valid & (close >= mid), valid & (close <= mid))

    def reason(j: int, c: int) -> str:
        if c == LONG:
            return f"close {close[j]:.2f} < lower band {lower[j]:.2f}"
        if c == SHORT:
            return f"close {close[j]:.2f} > upper band {upper[j]:.2f}"
        if c == FLAT:
            return f"close {close[j]:.2f} back at the middle band {mid[j]:.2f}"
        return ""

    return _assemble(runner, bars, code, reason)


def _donchian(runner: StrategyRunner, bars: pd.DataFrame) -> Signals:
    cfg = runner.strategy.config
    close = bars["close"].to_numpy(np.float64)
    # The channel of the bars BEFORE each bar (a max/min: exact whatever the order).
    high = bars["high"].rolling(cfg.period).max().shift(1).to_numpy(np.float64)
    low = bars["low"].rolling(cfg.period).min().shift(1).to_numpy(np.float64)
    code = np.where(close > high, LONG, np.where(close < low, SHORT, NONE))

    def reason(j: int, c: int) -> str:
        if c == LONG:
            return f"close {close[j]:.2f} broke the high {high[j]:.2f}"
        if c == SHORT:
            return f"close {close[j]:.2f} broke the low {low[j]:.2f}"
        return ""

    return _assemble(runner, bars, code, reason)


def _vwap(runner: StrategyRunner, bars: pd.DataFrame) -> Signals:
    from cryptoarena.trading.strategies.indicators import RollingVwap

    cfg = runner.strategy.config
    rolling = RollingVwap(cfg.period)
    vwap = bars["vwap"].to_numpy(np.float64).tolist()
    volume = bars["volume"].to_numpy(np.float64).tolist()
    v = _series([rolling.update(a, b) for a, b in zip(vwap, volume, strict=True)])
    close = bars["close"].to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        dist = (close / v - 1.0) * 1e4
    code = np.where(
        dist < -cfg.threshold_bps,
        LONG,
        np.where(dist > cfg.threshold_bps, SHORT, np.where(abs(dist) <= cfg.exit_bps, FLAT, NONE)),
    )

    def reason(j: int, c: int) -> str:
        if c == LONG:
            return f"{dist[j]:.1f} bps below vwap"
        if c == SHORT:
            return f"{dist[j]:.1f} bps above vwap"
        if c == FLAT:
            return f"back within {cfg.exit_bps} bps of vwap"
        return ""

    return _assemble(runner, bars, code, reason)


VECTORISED: dict[str, Callable[[StrategyRunner, pd.DataFrame], Signals]] = {
    "sma_cross": _sma_cross,
    "macd": _macd,
    "rsi_reversion": _rsi,
    "bollinger": _bollinger,
    "donchian": _donchian,
    "vwap_reversion": _vwap,
}
