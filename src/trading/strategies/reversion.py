"""Mean reversion: RSI extremes, Bollinger bands, distance from the rolling VWAP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from cryptoarena.data.records import Bar
from cryptoarena.trading.strategies.base import Strategy, StrategyConfig, StrategyContext
from cryptoarena.trading.strategies.indicators import (
    BandSums,
    RollingVwap,
    Rsi,
    band_spread,
    band_stats,
    beyond_band,
    price_units_array,
    window_sums,
)
from cryptoarena.trading.strategies.span import (
    FLAT,
    LONG,
    NONE,
    SHORT,
    SpanSignals,
    coded,
    series,
    sided,
)
from pydantic import Field, model_validator

if TYPE_CHECKING:
    import pandas as pd


class RsiConfig(StrategyConfig):
    period: int = Field(default=14, ge=2)
    lower: float = Field(default=30.0, gt=0.0, lt=100.0)
    upper: float = Field(default=70.0, gt=0.0, lt=100.0)

    @model_validator(mode="after")
    def _lower_below_upper(self) -> RsiConfig:
        if not self.lower < 50.0 < self.upper:
            raise ValueError(f"need lower < 50 < upper, got {self.lower} and {self.upper}")
        return self

    @property
    def warmup_bars(self) -> int:
        return self.period + 1


class RsiReversion(Strategy[RsiConfig]):
    """Buy oversold, sell overbought, go flat when RSI crosses back through 50."""

    kind = "rsi_reversion"
    config_type = RsiConfig

    def __init__(self, name: str, config: RsiConfig) -> None:
        super().__init__(name, config)
        self._rsi = Rsi(config.period)
        self._side = 0

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        rsi = self._rsi.update(bar.close)
        if rsi is None:
            return None
        cfg = self.config
        if rsi < cfg.lower:
            self._side = 1
            return self.long(f"rsi {rsi:.1f} < {cfg.lower}")
        if rsi > cfg.upper:
            self._side = -1
            return self.short(f"rsi {rsi:.1f} > {cfg.upper}")
        if (self._side > 0 and rsi >= 50.0) or (self._side < 0 and rsi <= 50.0):
            self._side = 0
            return self.flat(f"rsi {rsi:.1f} back through 50")
        return None

    def span_signals(self, bars: pd.DataFrame) -> SpanSignals:
        # The real RSI over the span (a tight loop: exact by construction), the rule in numpy.
        cfg = self.config
        rsi = Rsi(cfg.period)
        r = series([rsi.update(x) for x in bars["close"].to_numpy(np.float64).tolist()])
        enter = np.where(r < cfg.lower, 1, np.where(r > cfg.upper, -1, 0))
        code = sided(enter, r >= 50.0, r <= 50.0)

        def reason(j: int, c: int) -> str:
            if c == LONG:
                return f"rsi {r[j]:.1f} < {cfg.lower}"
            if c == SHORT:
                return f"rsi {r[j]:.1f} > {cfg.upper}"
            if c == FLAT:
                return f"rsi {r[j]:.1f} back through 50"
            return ""

        return coded(self.config, code, reason)


class BollingerConfig(StrategyConfig):
    period: int = Field(default=20, ge=2)
    k: float = Field(default=2.0, gt=0.0, le=10.0)

    @property
    def warmup_bars(self) -> int:
        return self.period


class Bollinger(Strategy[BollingerConfig]):
    """Fade closes outside the bands; go flat at the middle band. The close is compared with the
    mean ± k·sd exactly (sums of the closes in 1e-8 units, ``indicators.BandSums``): a close on
    a band or on the middle is on it, whatever float rounding would say; a flat window has no
    bands (no opinion)."""

    kind = "bollinger"
    config_type = BollingerConfig

    def __init__(self, name: str, config: BollingerConfig) -> None:
        super().__init__(name, config)
        self._sums = BandSums(config.period)
        self._side = 0

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        sums = self._sums
        if not sums.update(bar.close):
            return None
        n, k = self.config.period, self.config.k
        spread = sums.spread()
        if spread <= 0:
            return None
        offset = n * sums.last - sums.total  # n·(close − mean), in units
        out = beyond_band(offset, spread, k)
        mid, sd = band_stats(n, sums.total, spread)
        if offset < 0 and out:
            self._side = 1
            return self.long(f"close {bar.close:.2f} < lower band {mid - k * sd:.2f}")
        if offset > 0 and out:
            self._side = -1
            return self.short(f"close {bar.close:.2f} > upper band {mid + k * sd:.2f}")
        if (self._side > 0 and offset >= 0) or (self._side < 0 and offset <= 0):
            self._side = 0
            return self.flat(f"close {bar.close:.2f} back at the middle band {mid:.2f}")
        return None

    def span_signals(self, bars: pd.DataFrame) -> SpanSignals | None:
        cfg = self.config
        n, k = cfg.period, cfg.k
        close = bars["close"].to_numpy(np.float64)
        units = price_units_array(close, 2 * n)
        if units is None:
            return None
        total = window_sums(units, n)
        offset = n * units - total  # exact int64
        ready = np.arange(len(units)) >= n - 1
        spread_est, flat, unsure = _band_estimates(units, n)
        # |offset| > k·√spread, decided in float where the margin is wide, exactly elsewhere.
        num, den = k.as_integer_ratio()
        lhs = offset.astype(np.float64) ** 2 * float(den) ** 2
        rhs = float(num) ** 2 * spread_est
        out = lhs > rhs
        close_call = ready & ~flat & (np.abs(lhs - rhs) <= 1e-9 * (lhs + float(num) ** 2 * unsure))
        for j in np.flatnonzero(close_call).tolist():
            out[j] = beyond_band(int(offset[j]), _exact_spread(units, n, j), k)
        valid = ready & ~flat
        enter = np.where(valid & out & (offset < 0), 1, np.where(valid & out & (offset > 0), -1, 0))
        code = sided(enter, valid & (offset >= 0), valid & (offset <= 0))

        def reason(j: int, c: int) -> str:
            if c == NONE:
                return ""
            mid, sd = band_stats(n, int(total[j]), _exact_spread(units, n, j))
            if c == LONG:
                return f"close {close[j]:.2f} < lower band {mid - k * sd:.2f}"
            if c == SHORT:
                return f"close {close[j]:.2f} > upper band {mid + k * sd:.2f}"
            return f"close {close[j]:.2f} back at the middle band {mid:.2f}"

        return coded(self.config, code, reason)


_CHUNK = 65_536  # windows estimated at a time (bounded memory)


def _band_estimates(units: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window: a float estimate of n·Σu² − (Σu)², whether the window is flat (exact), and
    the size the estimate's rounding error scales with. Deviations from each window's first
    value keep the float sums small (no cancellation of prices ~1e12 units)."""
    m = len(units)
    est = np.zeros(m)
    flat = np.ones(m, dtype=bool)
    scale = np.zeros(m)
    if m < n:
        return est, flat, scale
    windows = np.lib.stride_tricks.sliding_window_view(units, n)
    for start in range(0, len(windows), _CHUNK):
        w = windows[start : start + _CHUNK]
        dev = (w - w[:, :1]).astype(np.float64)  # exact: |deviation| < 2**53
        a, b = dev.sum(axis=1), (dev * dev).sum(axis=1)
        at = slice(n - 1 + start, n - 1 + start + len(w))
        est[at] = n * b - a * a
        flat[at] = b == 0.0  # every deviation zero (a sum of squares is 0 only then)
        scale[at] = n * b + a * a
    return est, flat, scale


def _exact_spread(units: np.ndarray, n: int, j: int) -> int:
    window = [int(u) for u in units[j + 1 - n : j + 1]]
    total = sum(window)
    return band_spread(n, total, sum(u * u for u in window))


class VwapReversionConfig(StrategyConfig):
    period: int = Field(default=60, ge=2)
    threshold_bps: float = Field(default=10.0, gt=0.0)
    exit_bps: float = Field(default=2.0, ge=0.0)

    @model_validator(mode="after")
    def _exit_inside_entry(self) -> VwapReversionConfig:
        if self.exit_bps >= self.threshold_bps:
            raise ValueError("exit_bps must be smaller than threshold_bps")
        return self

    @property
    def warmup_bars(self) -> int:
        return self.period


class VwapReversion(Strategy[VwapReversionConfig]):
    """Fade moves more than ``threshold_bps`` away from the rolling VWAP."""

    kind = "vwap_reversion"
    config_type = VwapReversionConfig

    def __init__(self, name: str, config: VwapReversionConfig) -> None:
        super().__init__(name, config)
        self._vwap = RollingVwap(config.period)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> float | None:
        vwap = self._vwap.update(bar.vwap, bar.volume)
        if vwap is None:
            return None
        dist_bps = (bar.close / vwap - 1.0) * 1e4
        cfg = self.config
        if dist_bps < -cfg.threshold_bps:
            return self.long(f"{dist_bps:.1f} bps below vwap")
        if dist_bps > cfg.threshold_bps:
            return self.short(f"{dist_bps:.1f} bps above vwap")
        if abs(dist_bps) <= cfg.exit_bps:
            return self.flat(f"back within {cfg.exit_bps} bps of vwap")
        return None

    def span_signals(self, bars: pd.DataFrame) -> SpanSignals:
        # The real rolling VWAP over the span (a tight loop), the rule in numpy.
        cfg = self.config
        rolling = RollingVwap(cfg.period)
        vwap = bars["vwap"].to_numpy(np.float64).tolist()
        volume = bars["volume"].to_numpy(np.float64).tolist()
        v = series([rolling.update(a, b) for a, b in zip(vwap, volume, strict=True)])
        close = bars["close"].to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            dist = (close / v - 1.0) * 1e4
        code = np.where(
            dist < -cfg.threshold_bps,
            LONG,
            np.where(
                dist > cfg.threshold_bps, SHORT, np.where(abs(dist) <= cfg.exit_bps, FLAT, NONE)
            ),
        )

        def reason(j: int, c: int) -> str:
            if c == LONG:
                return f"{dist[j]:.1f} bps below vwap"
            if c == SHORT:
                return f"{dist[j]:.1f} bps above vwap"
            if c == FLAT:
                return f"back within {cfg.exit_bps} bps of vwap"
            return ""

        return coded(self.config, code, reason)
