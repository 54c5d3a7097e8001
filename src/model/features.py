"""The one feature pipeline: 1-second bars → model inputs, used by training, serving and strategies.

Every feature is a return, a ratio or an activity count, so forecasts do not depend on the price
level: multiplying every price by a constant leaves the features unchanged (bit for bit when the
constant is a power of two). Each row depends only on the ``lookback`` bars before it (sliding
windows, never running sums over the whole frame), so features computed on a short live window
equal those computed over a whole day: no training/serving skew.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

logger = logging.getLogger(__name__)

BP = 1e4  # basis points per unit of log return
REQUIRED_COLUMNS = ("close", "high", "low", "volume", "vwap", "trades", "buy_volume", "sell_volume")
# Per-second order-book state (cryptoarena.model.book), needed only when ``spec.book``.
BOOK_COLUMNS = ("bid", "ask", "bid_sz1", "ask_sz1", "bid_sz5", "ask_sz5")
BOOK_FEATURES = ("book_imb_1", "book_imb_5", "micro_dist", "spread", "depth_chg_15")
DEPTH_LAG = 15


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
    book: bool = False  # order-book features (needs BOOK_COLUMNS in the bars)

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
        if self.book:
            names += BOOK_FEATURES
        return tuple(names)

    @property
    def columns(self) -> tuple[str, ...]:
        """Bar columns the features read."""
        return REQUIRED_COLUMNS + (BOOK_COLUMNS if self.book else ())

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
            DEPTH_LAG if self.book else 0,
        )


# Bars as columns: a bar frame, or a mapping of column name → 1-D array (what serving parses).
BarWindow: TypeAlias = pd.DataFrame | Mapping[str, Any]


def _rolling_sum(x: np.ndarray, window: int, first: int) -> np.ndarray:
    """Sums over the ``window`` rows (axis 1) ending at each row ``first..n-1`` of ``x`` (B, n, K).

    Adds shifted slices in a fixed order (oldest to newest), so a row's sum is bit-identical
    whether computed on a whole day or on a short live window (numpy's own reductions may change
    the order with the shape; cumsum keeps it but is slower here). Needs ``first >= window - 1``.
    One call sums every column K of every window B: ``window`` numpy adds in all.
    """
    n = x.shape[1]
    start = first - window + 1
    acc = x[:, start : n - window + 1].copy()
    for j in range(1, window):
        acc += x[:, start + j : n - window + 1 + j]
    return acc


def _log_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(num / den)


def validate_bars(bars: BarWindow, columns: Sequence[str] = REQUIRED_COLUMNS) -> None:
    missing = [c for c in columns if c not in bars]
    if missing:
        raise FeatureError(f"bars lack columns {missing}; expected records.BAR_COLUMNS")
    close = np.asarray(bars["close"], dtype=np.float64)
    if len(close) and not (np.all(np.isfinite(close)) and np.all(close > 0)):
        raise FeatureError("bar closes must be finite and positive (forward-fill empty seconds)")


def _feature_rows(cols: Mapping[str, np.ndarray], spec: FeatureSpec, first: int) -> np.ndarray:
    """THE feature computation: rows ``first..n-1`` of B windows laid as columns (B, n) float64.

    Returns (B, n - first, F). Needs ``first >= spec.lookback``: every row read exists, so no
    warm-up NaNs arise here. Training (all rows of a day, B = 1) and serving (the last ``window``
    rows of each request, B = micro-batch) both come through this function.
    """
    # Division by zero and log(0) give inf/NaN, which the callers check; no warnings per call.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _feature_rows_unchecked(cols, spec, first)


def _feature_rows_unchecked(
    cols: Mapping[str, np.ndarray], spec: FeatureSpec, first: int
) -> np.ndarray:
    close = cols["close"]
    n = close.shape[1]
    last = close[:, first:]
    lags = spec.return_lags
    # spec.n_features without building the names on every call.
    n_rolled = len(spec.vol_windows) + len(spec.flow_windows) + len(spec.vwap_windows)
    n_features = len(lags) + n_rolled + 2 * len(spec.activity_windows) + 1
    n_features += len(BOOK_FEATURES) if spec.book else 0
    out = np.empty((close.shape[0], n - first, n_features))
    # All return lags in one division and one log (elementwise: the same numbers as one by one).
    lagged = np.stack([close[:, first - k : n - k] for k in lags], axis=2)
    out[:, :, : len(lags)] = np.log(last[:, :, None] / lagged)
    f = len(lags)
    # 1 s returns from the earliest row any rolling window reads (max(vol_windows) <= lookback).
    r_from = first - max(spec.vol_windows) + 1
    r1 = np.log(close[:, r_from:] / close[:, r_from - 1 : n - 1])
    buy, sell, volume = cols["buy_volume"], cols["sell_volume"], cols["volume"]
    sq = np.full_like(close, np.nan)
    sq[:, r_from:] = r1 * r1
    # Every rolling sum of one window length in a single pass: (B, n, K) inputs, K side by side.
    inputs = {
        "sq": sq,
        "imb": buy - sell,
        "tot": buy + sell,
        "vol": volume,
        "notional": cols["vwap"] * volume,
        "trades": cols["trades"],
    }
    wants: dict[int, list[str]] = {}
    for w in spec.vol_windows:
        wants.setdefault(w, []).append("sq")
    for w in spec.flow_windows:
        wants.setdefault(w, []).extend(("imb", "tot"))
    for w in spec.vwap_windows:
        wants.setdefault(w, []).extend(("vol", "notional"))
    for w in spec.activity_windows:
        wants.setdefault(w, []).extend(("vol", "trades"))
    sums: dict[tuple[int, str], np.ndarray] = {}
    for w, names in wants.items():
        names = list(dict.fromkeys(names))
        stacked = np.stack([inputs[name] for name in names], axis=2)
        rolled = _rolling_sum(stacked, w, first)
        for i, name in enumerate(names):
            sums[(w, name)] = np.ascontiguousarray(rolled[:, :, i])
    for w in spec.vol_windows:
        out[:, :, f] = np.sqrt(np.maximum(sums[(w, "sq")], 0.0))
        f += 1
    for w in spec.flow_windows:
        imbalance, total = sums[(w, "imb")], sums[(w, "tot")]
        out[:, :, f] = np.where(total > 0, imbalance / total, np.where(np.isnan(total), np.nan, 0))
        f += 1
    for w in spec.vwap_windows:
        vol_w = sums[(w, "vol")]
        vwap_w = np.where(vol_w > 0, sums[(w, "notional")] / vol_w, last)
        dist = np.log(last / vwap_w)
        out[:, :, f] = np.where(np.isnan(vol_w), np.nan, dist)
        f += 1
    for w in spec.activity_windows:
        out[:, :, f] = np.log1p(sums[(w, "vol")])
        out[:, :, f + 1] = np.log1p(sums[(w, "trades")])
        f += 2
    out[:, :, f] = np.log(cols["high"][:, first:] / cols["low"][:, first:])
    if spec.book:
        _book_rows(cols, first, out[:, :, f + 1 :])
    return out


def _book_rows(cols: Mapping[str, np.ndarray], first: int, out: np.ndarray) -> None:
    """Order-book features of rows ``first..n-1`` into ``out`` (B, n - first, 5): imbalance of
    the best level and of the best five, microprice distance from the mid, relative spread, and
    the change of five-level depth (bid minus ask, log) over DEPTH_LAG seconds."""
    bid, ask = cols["bid"][:, first:], cols["ask"][:, first:]
    b1, a1 = cols["bid_sz1"][:, first:], cols["ask_sz1"][:, first:]
    b5, a5 = cols["bid_sz5"], cols["ask_sz5"]
    n = b5.shape[1]
    out[:, :, 0] = (b1 - a1) / (b1 + a1)
    out[:, :, 1] = (b5[:, first:] - a5[:, first:]) / (b5[:, first:] + a5[:, first:])
    mid = (bid + ask) / 2
    micro = (bid * a1 + ask * b1) / (b1 + a1)
    out[:, :, 2] = np.log(micro / mid)
    out[:, :, 3] = np.log(ask / bid)
    lag = slice(first - DEPTH_LAG, n - DEPTH_LAG)
    out[:, :, 4] = np.log(b5[:, first:] / b5[:, lag]) - np.log(a5[:, first:] / a5[:, lag])


def _columns(
    windows: Sequence[BarWindow], last: int, columns: Sequence[str] = REQUIRED_COLUMNS
) -> dict[str, np.ndarray]:
    """The last ``last`` rows of each window's feature inputs, as (B, last) float64 arrays."""
    out = {}
    for c in columns:
        out[c] = np.empty((len(windows), last))
        for i, bars in enumerate(windows):
            out[c][i] = np.asarray(bars[c], dtype=np.float64)[len(bars[c]) - last :]
    return out


def compute_features(bars: BarWindow, spec: FeatureSpec) -> np.ndarray:
    """Features for every bar, shape (n, spec.n_features), float64; rows < lookback are NaN."""
    validate_bars(bars, spec.columns)
    n = len(bars["close"])
    out = np.full((n, spec.n_features), np.nan)
    if n > spec.lookback:
        cols = _columns([bars], n, spec.columns)
        out[spec.lookback :] = _feature_rows(cols, spec, spec.lookback)[0]
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
    windows: Sequence[BarWindow], spec: FeatureSpec, window: int
) -> np.ndarray:
    """The last ``window`` feature rows of each bar window, shape (len(windows), window, F).

    Only the last ``min_bars`` bars of each window are read, and all windows go through ONE
    vectorised pass of the pipeline (a frame or a mapping of column arrays per window).
    """
    need = min_bars(spec, window)
    for i, bars in enumerate(windows):
        missing = [c for c in spec.columns if c not in bars]
        if missing:
            raise FeatureError(f"bars lack columns {missing}; expected records.BAR_COLUMNS")
        if len(bars["close"]) < need:
            raise FeatureError(
                f"window {i} has {len(bars['close'])} bars; the model needs at least {need}"
            )
    if not windows:
        return np.empty((0, window, spec.n_features), dtype=np.float32)
    cols = _columns(windows, need, spec.columns)
    close = cols["close"]
    bad = ~(np.isfinite(close) & (close > 0)).all(axis=1)
    if bad.any():
        raise FeatureError(
            f"window {int(np.argmax(bad))}: bar closes must be finite and positive "
            "(forward-fill empty seconds)"
        )
    feats = _feature_rows(cols, spec, need - window)
    finite = np.isfinite(feats).all(axis=(1, 2))
    if not finite.all():
        raise FeatureError(f"window {int(np.argmin(finite))} gives non-finite features (bad bars?)")
    return feats.astype(np.float32)


def min_bars(spec: FeatureSpec, window: int) -> int:
    """Bars a forecast needs: the model window plus the features' lookback."""
    return window + spec.lookback
