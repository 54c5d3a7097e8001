"""Incremental indicators: each update is O(1) (amortised for the rolling max/min)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np

PRICE_UNITS = 10**8
"""Prices enter the crossover and band rules as whole numbers of 1e-8 (``price_units``), so their
sums are exact and "above", "below" and "equal" mean what they say: a flat market cannot flip a
rule by float rounding (issue #20). Exact for prices with up to eight decimals."""
_INT64_ROOM = 2**62  # what a product of window sums may reach in the vectorised twins


def price_units(x: float) -> int:
    """A price in whole 1e-8 units (the rounding of ``x * 1e8``: exact for ≤ 8 decimals)."""
    return round(x * PRICE_UNITS)


def price_units_array(prices: np.ndarray, factor: int) -> np.ndarray | None:
    """``price_units`` of every price as int64, or None when ``factor`` × the largest of them
    would not fit in int64 (the caller's products of sums; it then steps the strategy)."""
    if len(prices) == 0:
        return np.zeros(0, np.int64)
    scaled = prices.astype(np.float64) * PRICE_UNITS
    biggest = float(np.nanmax(np.abs(scaled)))
    if not biggest < min(_INT64_ROOM / max(factor, 1), 2.0**53):
        return None
    return np.rint(scaled).astype(np.int64)


def window_sums(units: np.ndarray, period: int) -> np.ndarray:
    """Exact int64 sums of the last ``period`` values at each index (0 before the first full
    window). The running sum may wrap around int64; differences of it are still exact as long
    as each window's sum fits (``price_units_array``'s bound)."""
    n = len(units)
    out = np.zeros(n, np.int64)
    if n >= period:
        csum = np.concatenate((np.zeros(1, np.int64), np.cumsum(units, dtype=np.int64)))
        with np.errstate(over="ignore"):
            out[period - 1 :] = csum[period:] - csum[: n + 1 - period]
    return out


class Sma:
    """Simple moving average over the last ``period`` values: an exact running sum of the prices
    in whole 1e-8 units (``total``); :func:`sma_compare` orders two of them exactly. ``value`` is
    that sum's mean as a float (for reasons and charts)."""

    __slots__ = ("_window", "period", "total", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[int] = deque()
        self.total = 0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        u = price_units(x)
        self._window.append(u)
        self.total += u
        if len(self._window) > self.period:
            self.total -= self._window.popleft()
        if len(self._window) < self.period:
            return None
        self.value = sma_value(self.total, self.period)
        return self.value


def sma_value(total: int, period: int) -> float:
    """The mean of a window sum in price units, as a float (the same rounding for an int and an
    int64 array element: the sum is converted to a float first)."""
    return float(total) / (period * PRICE_UNITS)


def sma_compare(a: Sma, b: Sma) -> int:
    """The exact sign of ``a``'s mean minus ``b``'s (both full)."""
    d = a.total * b.period - b.total * a.period
    return (d > 0) - (d < 0)


class BandSums:
    """Exact window sums of prices in 1e-8 units, Σu and Σu², for band rules (Bollinger): with
    n·Σu² − (Σu)² = n²·variance (in units²) a close is compared with mean ± k·sd exactly."""

    __slots__ = ("_window", "last", "period", "squares", "total")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[int] = deque()
        self.total = 0
        self.squares = 0
        self.last = 0  # the newest price, in units

    def update(self, x: float) -> bool:
        """Add a price; True once the window is full."""
        u = self.last = price_units(x)
        self._window.append(u)
        self.total += u
        self.squares += u * u
        if len(self._window) > self.period:
            old = self._window.popleft()
            self.total -= old
            self.squares -= old * old
        return len(self._window) == self.period

    def stats(self) -> tuple[float, float]:
        """The full window's mean and population standard deviation (floats)."""
        return band_stats(self.period, self.total, self.spread())

    def spread(self) -> int:
        return band_spread(self.period, self.total, self.squares)


def band_spread(period: int, total: int, squares: int) -> int:
    """n·Σu² − (Σu)²: n² times the window's variance in units² (0 for a flat window)."""
    return period * squares - total * total


def band_stats(period: int, total: int, spread: int) -> tuple[float, float]:
    """The window's mean and population standard deviation as floats (for reasons)."""
    scale = period * PRICE_UNITS
    return float(total) / scale, math.sqrt(spread) / scale


def beyond_band(offset: int, spread: int, k: float) -> bool:
    """|offset| > k·√spread, exactly (``offset`` = n·close − Σu, ``k`` a float taken exactly)."""
    num, den = k.as_integer_ratio()
    return offset * offset * den * den > num * num * spread


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
