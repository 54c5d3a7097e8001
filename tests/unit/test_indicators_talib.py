"""Every incremental indicator against TA-Lib (the field's reference implementation) on the
shipped real 1-minute klines (two days, two timestamp units)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from cryptoarena.data.loaders import load_binance_klines
from cryptoarena.data.samples import sample_path
from cryptoarena.trading.strategies.indicators import (
    BandSums,
    Ema,
    RollingExtremes,
    RollingVwap,
    Rsi,
    Sma,
)

talib = pytest.importorskip("talib")

DAYS = ("BTCUSDT-1m-2024-03-11.csv.gz", "BTCUSDT-1m-2025-03-11.csv.gz")
# Float64 on both sides; TA-Lib's running sums and ours differ only in rounding order.
RTOL, ATOL = 1e-9, 1e-9


def _bars(name: str) -> dict[str, np.ndarray]:
    bars, _ = load_binance_klines(sample_path(name))
    return {c: bars[c].to_numpy(np.float64) for c in ("high", "low", "close", "volume", "vwap")}


def _series(update: Callable[[float], Any], xs: np.ndarray) -> np.ndarray:
    out = [update(float(x)) for x in xs]
    return np.array([np.nan if v is None else v for v in out], dtype=np.float64)


def _same(ours: np.ndarray, ref: np.ndarray, *, rtol: float = RTOL, atol: float = ATOL) -> None:
    # Same warm-up (NaN where the reference has no value yet), then the same numbers.
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=rtol, atol=atol)


@pytest.fixture(params=DAYS)
def day(request: pytest.FixtureRequest) -> dict[str, np.ndarray]:
    return _bars(request.param)


@pytest.mark.parametrize("period", [5, 20, 60])
def test_sma_and_ema(day: dict[str, np.ndarray], period: int) -> None:
    close = day["close"]
    _same(_series(Sma(period).update, close), talib.SMA(close, period))
    _same(_series(Ema(period).update, close), talib.EMA(close, period))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_is_wilders(day: dict[str, np.ndarray], period: int) -> None:
    close = day["close"]
    _same(_series(Rsi(period).update, close), talib.RSI(close, period), atol=1e-8)


@pytest.mark.parametrize(("period", "k"), [(20, 2.0), (50, 1.5)])
def test_bollinger_bands(day: dict[str, np.ndarray], period: int, k: float) -> None:
    close = day["close"]
    std = BandSums(period)
    mid, width = [], []
    for x in close:
        got = std.stats() if std.update(float(x)) else None
        mid.append(np.nan if got is None else got[0])
        width.append(np.nan if got is None else got[1])
    upper, middle, lower = talib.BBANDS(close, period, k, k, 0)
    m, w = np.array(mid), np.array(width)
    # TA-Lib's deviation comes from Σx² − n·mean² at prices ~1e5: good to ~1e-6 absolute.
    _same(m, middle)
    _same(m + k * w, upper, rtol=0, atol=1e-6)
    _same(m - k * w, lower, rtol=0, atol=1e-6)
    _same(w, talib.STDDEV(close, period, 1.0), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5)])
def test_macd(day: dict[str, np.ndarray], fast: int, slow: int, signal: int) -> None:
    """Our MACD (the strategy's: two EMAs, each seeded on its own first values, and an EMA of
    their difference) equals TA-Lib's EMAs composed the same way; TA-Lib's MACD seeds the fast
    EMA later (aligned to the slow one), a difference that decays as (1 - 2/(fast+1))^n."""
    close = day["close"]
    f, s, g = Ema(fast), Ema(slow), Ema(signal)
    macd, sig = [], []
    for x in close:
        a, b = f.update(float(x)), s.update(float(x))
        if a is None or b is None:
            macd.append(np.nan)
            sig.append(np.nan)
            continue
        macd.append(a - b)
        v = g.update(a - b)
        sig.append(np.nan if v is None else v)
    ours_macd, ours_sig = np.array(macd), np.array(sig)
    composed = talib.EMA(close, fast) - talib.EMA(close, slow)
    _same(ours_macd, composed, atol=1e-8)
    first = slow - 1
    ref_sig = np.full_like(close, np.nan)
    ref_sig[first:] = talib.EMA(composed[first:], signal)
    _same(ours_sig, ref_sig, atol=1e-8)
    t_macd, t_sig, _ = talib.MACD(close, fast, slow, signal)
    burn = slow + signal + 40 * fast  # (1 - 2/(fast+1))^(40 fast) < 1e-30
    np.testing.assert_allclose(ours_macd[burn:], t_macd[burn:], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours_sig[burn:], t_sig[burn:], rtol=0, atol=1e-8)


@pytest.mark.parametrize("period", [20, 55])
def test_donchian_extremes(day: dict[str, np.ndarray], period: int) -> None:
    ext = RollingExtremes(period)
    hi, lo = [], []
    for h, low in zip(day["high"], day["low"], strict=True):
        ext.update(float(h), float(low))
        hi.append(ext.high if ext.ready else np.nan)
        lo.append(ext.low if ext.ready else np.nan)
    _same(np.array(hi), talib.MAX(day["high"], period), rtol=0, atol=0)
    _same(np.array(lo), talib.MIN(day["low"], period), rtol=0, atol=0)


@pytest.mark.parametrize("period", [30])
def test_rolling_vwap(day: dict[str, np.ndarray], period: int) -> None:
    vwap, vol = day["vwap"], day["volume"]
    ours = RollingVwap(period)
    got = np.array(
        [
            np.nan if (v := ours.update(float(p), float(q))) is None else v
            for p, q in zip(vwap, vol, strict=True)
        ]
    )
    ref = talib.SUM(vwap * vol, period) / talib.SUM(vol, period)
    _same(got, ref, rtol=1e-9, atol=0)
