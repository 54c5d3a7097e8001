"""The one feature pipeline: 1-second bars → model inputs, used by training, serving and strategies.

Every feature is a return, a ratio or an activity count, so forecasts do not depend on the price
level: multiplying every price by a constant leaves the features unchanged (bit for bit when the
constant is a power of two). Each row depends only on the ``lookback`` bars before it (sliding
windows, never running sums over the whole frame), so features computed on a short live window
equal those computed over a whole day: no training/serving skew.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

logger = logging.getLogger(__name__)

BP = 1e4  # basis points per unit of log return
REQUIRED_COLUMNS = ("close", "high", "low", "volume", "vwap", "trades", "buy_volume", "sell_volume")


class FeatureError(ValueError):
    """The bars cannot be turned into features (missing columns, too short, bad values)."""


def _positive_windows(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value or any(w < 1 for w in value):
        raise ValueError("windows must be a non-empty tuple of positive integers")
    return tuple(sorted(set(value)))


class FeatureSpec(BaseModel):
    """Which features, over which windows (in 1-second bars). Saved with every model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    return_lags: tuple[int, ...] = (1, 2, 5, 15, 30, 60)
    vol_windows: tuple[int, ...] = (15, 60)
    flow_windows: tuple[int, ...] = (1, 15, 60)
    vwap_windows: tuple[int, ...] = (1, 60)
    activity_windows: tuple[int, ...] = (1, 15)
    horizon: int = Field(default=15, ge=1, le=300)

    _check = field_validator(
        "return_lags", "vol_windows", "flow_windows", "vwap_windows", "activity_windows"
    )(_positive_windows)

    @property
    def names(self) -> tuple[str, ...]:
        names = [f"ret_{k}" for k in self.return_lags]
        names += [f"rvol_{w}" for w in self.vol_windows]
        names += [f"ofi_{w}" for w in self.flow_windows]
        names += [f"vwap_dist_{w}" for w in self.vwap_windows]
        for w in self.activity_windows:
            names += [f"log_volume_{w}", f"log_trades_{w}"]
        names.append("range_1")
        return tuple(names)

    @property
    def n_features(self) -> int:
        return len(self.names)

    @property
    def lookback(self) -> int:
        """Bars before a row that its features read (rows before that are NaN)."""
        return max(
            max(self.return_lags),
            max(self.vol_windows),  # 1 s returns over w bars need w earlier closes
            max(self.flow_windows) - 1,
            max(self.vwap_windows) - 1,
            max(self.activity_windows) - 1,
        )


def _rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the last ``window`` rows (NaN before), each row summed on its own window."""
    # Adds shifted slices in a fixed order, so a row's sum is bit-identical whether computed on
    # a whole day or on a short live window (numpy's own reductions may change order with shape).
    n = len(values)
    out = np.full(n, np.nan)
    if n >= window:
        acc = values[: n - window + 1].copy()
        for j in range(1, window):
            acc += values[j : n - window + 1 + j]
        out[window - 1 :] = acc
    return out


def _log_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(num / den)


def validate_bars(bars: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in bars.columns]
    if missing:
        raise FeatureError(f"bars lack columns {missing}; expected records.BAR_COLUMNS")
    close = bars["close"].to_numpy(np.float64)
    if len(close) and not (np.all(np.isfinite(close)) and np.all(close > 0)):
        raise FeatureError("bar closes must be finite and positive (forward-fill empty seconds)")


def compute_features(bars: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Features for every bar, shape (n, spec.n_features), float64; rows < lookback are NaN."""
    validate_bars(bars)
    close = bars["close"].to_numpy(np.float64)
    n = len(close)
    cols: list[np.ndarray] = []
    for k in spec.return_lags:
        col = np.full(n, np.nan)
        if n > k:
            col[k:] = _log_ratio(close[k:], close[:-k])
        cols.append(col)
    r1 = np.full(n, np.nan)
    if n > 1:
        r1[1:] = _log_ratio(close[1:], close[:-1])
    for w in spec.vol_windows:
        cols.append(np.sqrt(np.maximum(_rolling_sum(r1 * r1, w), 0.0)))
    buy = bars["buy_volume"].to_numpy(np.float64)
    sell = bars["sell_volume"].to_numpy(np.float64)
    for w in spec.flow_windows:
        imbalance = _rolling_sum(buy - sell, w)
        total = _rolling_sum(buy + sell, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            cols.append(
                np.where(total > 0, imbalance / total, np.where(np.isnan(total), np.nan, 0))
            )
    volume = bars["volume"].to_numpy(np.float64)
    notional = bars["vwap"].to_numpy(np.float64) * volume
    for w in spec.vwap_windows:
        vol_w = _rolling_sum(volume, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            vwap_w = np.where(vol_w > 0, _rolling_sum(notional, w) / vol_w, close)
        dist = _log_ratio(close, vwap_w)
        cols.append(np.where(np.isnan(vol_w), np.nan, dist))
    trades = bars["trades"].to_numpy(np.float64)
    for w in spec.activity_windows:
        cols.append(np.log1p(_rolling_sum(volume, w)))
        cols.append(np.log1p(_rolling_sum(trades, w)))
    cols.append(_log_ratio(bars["high"].to_numpy(np.float64), bars["low"].to_numpy(np.float64)))
    out = np.column_stack(cols) if n else np.empty((0, spec.n_features))
    out[: spec.lookback] = np.nan
    return out


def compute_targets(bars: pd.DataFrame, horizon: int) -> np.ndarray:
    """Log return from each bar's close to 1..horizon bars ahead, shape (n, horizon); NaN at the end."""
    close = bars["close"].to_numpy(np.float64)
    n = len(close)
    out = np.full((n, horizon), np.nan)
    for h in range(1, horizon + 1):
        if n > h:
            out[: n - h, h - 1] = _log_ratio(close[h:], close[: n - h])
    return out


class Scaler(BaseModel):
    """Per-feature standardisation, fitted on the training split only and saved with the model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, features: np.ndarray) -> Scaler:
        if features.ndim != 2 or len(features) == 0:
            raise FeatureError("scaler needs a non-empty 2-D feature array")
        if not np.all(np.isfinite(features)):
            raise FeatureError("scaler fit on non-finite features (drop the warm-up rows first)")
        mean = features.mean(axis=0)
        std = features.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)  # constant feature: leave it centred, not exploded
        return cls(mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))

    def transform(self, features: np.ndarray) -> np.ndarray:
        return (features - np.asarray(self.mean)) / np.asarray(self.std)


def last_window_features(
    windows: Sequence[pd.DataFrame], spec: FeatureSpec, window: int
) -> np.ndarray:
    """The last ``window`` feature rows of each bar window, shape (len(windows), window, F)."""
    need = min_bars(spec, window)
    out = np.empty((len(windows), window, spec.n_features), dtype=np.float32)
    for i, bars in enumerate(windows):
        if len(bars) < need:
            raise FeatureError(f"window {i} has {len(bars)} bars; the model needs at least {need}")
        feats = compute_features(bars.iloc[-need:], spec)[-window:]
        if not np.all(np.isfinite(feats)):
            raise FeatureError(f"window {i} gives non-finite features (bad bars?)")
        out[i] = feats
    return out


def min_bars(spec: FeatureSpec, window: int) -> int:
    """Bars a forecast needs: the model window plus the features' lookback."""
    return window + spec.lookback
