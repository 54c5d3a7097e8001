"""Incremental indicators: each update is O(1) (amortised for the rolling max/min)."""

from __future__ import annotations

import math
from collections import deque


class Sma:
    """Simple moving average over the last ``period`` values (a running sum, not a re-sum).

    The sum is updated in TA-Lib's order (add the new value, read, then drop the oldest), so
    the values equal ``talib.SMA`` bit for bit (tests/unit/test_indicators_talib.py)."""

    __slots__ = ("_sum", "_window", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[float] = deque()
        self._sum = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        self._window.append(x)
        self._sum += x
        if len(self._window) < self.period:
            return None
        self.value = self._sum / self.period
        self._sum -= self._window.popleft()
        return self.value


class Ema:
    """Exponential moving average seeded with the SMA of the first ``period`` values."""

    __slots__ = ("_alpha", "_count", "_seed", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._alpha = 2.0 / (period + 1)
        self._count = 0
        self._seed = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        if self.value is None:
            self._count += 1
            self._seed += x
            if self._count == self.period:
                self.value = self._seed / self.period
            return self.value
        self.value += self._alpha * (x - self.value)
        return self.value


class RollingStd:
    """Mean and population standard deviation over a window.

    Sums are kept around a shift ``_k`` (re-centred on the window mean every ``period`` updates,
    amortised O(1)) so that prices near 10⁴…10⁵ do not cancel catastrophically in Σx² − n·mean².
    """

    __slots__ = ("_k", "_since", "_sum", "_sumsq", "_window", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[float] = deque()
        self._k: float | None = None
        self._since = 0
        self._sum = 0.0
        self._sumsq = 0.0

    def update(self, x: float) -> tuple[float, float] | None:
        if self._k is None:
            self._k = x
        self._window.append(x)
        d = x - self._k
        self._sum += d
        self._sumsq += d * d
        if len(self._window) > self.period:
            old = self._window.popleft() - self._k
            self._sum -= old
            self._sumsq -= old * old
        self._since += 1
        if self._since >= self.period:
            self._recentre()
        if len(self._window) < self.period:
            return None
        n = self.period
        mean_d = self._sum / n
        var = max(self._sumsq / n - mean_d * mean_d, 0.0)
        return self._k + mean_d, math.sqrt(var)

    def _recentre(self) -> None:
        self._since = 0
        k = sum(self._window) / len(self._window)
        self._k = k
        self._sum = sum(v - k for v in self._window)
        self._sumsq = sum((v - k) ** 2 for v in self._window)


class Rsi:
    """Wilder's RSI."""

    __slots__ = ("_avg_gain", "_avg_loss", "_count", "_prev", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._prev: float | None = None
        self._count = 0
        self._avg_gain = 0.0
        self._avg_loss = 0.0

    def update(self, x: float) -> float | None:
        prev, self._prev = self._prev, x
        if prev is None:
            return None
        change = x - prev
        gain, loss = max(change, 0.0), max(-change, 0.0)
        n = self.period
        if self._count < n:
            self._count += 1
            self._avg_gain += gain / n
            self._avg_loss += loss / n
            if self._count < n:
                return None
        else:
            self._avg_gain = (self._avg_gain * (n - 1) + gain) / n
            self._avg_loss = (self._avg_loss * (n - 1) + loss) / n
        return self.value

    @property
    def value(self) -> float | None:
        if self._count < self.period:
            return None
        if self._avg_loss == 0.0:
            return 100.0 if self._avg_gain > 0 else 50.0
        rs = self._avg_gain / self._avg_loss
        return 100.0 - 100.0 / (1.0 + rs)


class RollingExtremes:
    """Highest high and lowest low over the last ``period`` values (monotonic deques)."""

    __slots__ = ("_i", "_max", "_min", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._i = 0
        self._max: deque[tuple[int, float]] = deque()
        self._min: deque[tuple[int, float]] = deque()

    def update(self, high: float, low: float) -> None:
        i = self._i
        self._i += 1
        while self._max and self._max[-1][1] <= high:
            self._max.pop()
        self._max.append((i, high))
        while self._min and self._min[-1][1] >= low:
            self._min.pop()
        self._min.append((i, low))
        cutoff = i - self.period
        while self._max[0][0] <= cutoff:
            self._max.popleft()
        while self._min[0][0] <= cutoff:
            self._min.popleft()

    @property
    def ready(self) -> bool:
        return self._i >= self.period

    @property
    def high(self) -> float:
        return self._max[0][1]

    @property
    def low(self) -> float:
        return self._min[0][1]


class RollingVwap:
    """Volume-weighted average price over the last ``period`` bars."""

    __slots__ = ("_notional", "_volume", "_window", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[tuple[float, float]] = deque()
        self._notional = 0.0
        self._volume = 0.0

    def update(self, vwap: float, volume: float) -> float | None:
        pv = vwap * volume
        self._window.append((pv, volume))
        self._notional += pv
        self._volume += volume
        if len(self._window) > self.period:
            old_pv, old_v = self._window.popleft()
            self._notional -= old_pv
            self._volume -= old_v
        if len(self._window) < self.period or self._volume <= 1e-12:
            return None
        return self._notional / self._volume
