"""Baselines with the LSTM's interface: feature windows (N, W, F) → (N, 1, horizon) log returns.

Wrap any of them in :class:`~cryptoarena.model.forecaster.Forecaster` and they take bars too.
- persistence: no change (zero return) — the benchmark every claim of skill is made against;
- drift: an EWMA of 1-second returns over the window, extrapolated linearly (h × mean);
- ridge: a linear model (closed form) from the last bar's scaled features to the 15 returns.
"""

from __future__ import annotations

import logging

import numpy as np
from cryptoarena.model.features import FeatureSpec, Scaler

logger = logging.getLogger(__name__)


class Persistence:
    name = "persistence"

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), 1, self.horizon))


class EwmaDrift:
    """h-step forecast = h × EWMA of the window's 1-second log returns (halflife in seconds)."""

    name = "ewma_drift"

    def __init__(self, spec: FeatureSpec, horizon: int, halflife_s: float = 30.0) -> None:
        if 1 not in spec.return_lags:
            raise ValueError("the drift baseline needs the 1-second return feature (ret_1)")
        self.col = spec.names.index("ret_1")
        self.horizon = horizon
        self.halflife_s = halflife_s

    def __call__(self, x: np.ndarray) -> np.ndarray:
        r = x[:, :, self.col].astype(np.float64)
        age = np.arange(r.shape[1] - 1, -1, -1, dtype=np.float64)
        w = 0.5 ** (age / self.halflife_s)
        mu = (r * w).sum(axis=1) / w.sum()
        steps = np.arange(1, self.horizon + 1, dtype=np.float64)
        return (mu[:, None] * steps[None, :])[:, None, :]


class Ridge:
    """Ridge regression from the last row's standardised features to the whole return path."""

    name = "ridge"

    def __init__(self, scaler: Scaler, alpha: float = 10.0) -> None:
        self.scaler = scaler
        self.alpha = alpha
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None

    def fit(self, last_rows: np.ndarray, targets: np.ndarray) -> Ridge:
        """``last_rows`` (N, F) raw features at the anchors, ``targets`` (N, H) log returns."""
        z = self.scaler.transform(last_rows.astype(np.float64))
        y = targets.astype(np.float64)
        y_mean = y.mean(axis=0)
        z_mean = z.mean(axis=0)
        zc, yc = z - z_mean, y - y_mean
        gram = zc.T @ zc + self.alpha * np.eye(z.shape[1])
        self.coef = np.linalg.solve(gram, zc.T @ yc)
        self.intercept = y_mean - z_mean @ self.coef
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.coef is None or self.intercept is None:
            raise RuntimeError("ridge baseline used before fit()")
        z = self.scaler.transform(x[:, -1, :].astype(np.float64))
        return (z @ self.coef + self.intercept)[:, None, :]
