"""What serving and strategies use: a forecaster that maps recent 1-second bars to a return path.

``Forecaster.predict(windows)`` takes bar frames (records.BAR_COLUMNS, at least ``info.min_bars``
rows each, only the last rows are used) and returns, per window, the log return from the last
bar's close to 1..horizon seconds ahead. The same object wraps the LSTM (in memory or loaded
from the MLflow registry) and the baselines, so all are judged through one code path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from cryptoarena.model.features import (
    BarWindow,
    FeatureError,
    FeatureSpec,
    compute_features,
    last_window_features,
    min_bars,
)
from cryptoarena.model.windows import gather
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)


class ForecastModelInfo(BaseModel):
    """Identity and shape of a forecaster; ``metrics`` are its held-out evaluation numbers."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    run_id: str
    horizon: int = 15
    window: int
    min_bars: int
    quantiles: tuple[float, ...] = ()
    metrics: dict[str, float] = Field(default_factory=dict)
    feature_names: tuple[str, ...] = ()
    # From the registry's version tags: how @champion was set (gate | bootstrap | forced, "" if
    # never champion) and the gate's verdict with its numbers.
    promotion: str = ""
    gate: str = ""
    # The training configuration (LSTMConfig fields) saved with a registered model.
    train_config: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Predictor(Protocol):
    """Feature windows (N, window, F) float32 → (N, 1 + Q, horizon) log returns."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class TorchPredictor:
    """Runs a network (eager or exported) in inference mode, in bounded batches."""

    def __init__(self, net: torch.nn.Module, *, batch_size: int = 4096) -> None:
        self.net = net
        self.batch_size = batch_size

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for start in range(0, len(x), self.batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + self.batch_size]))
                outs.append(self.net(chunk).numpy().astype(np.float64))
        return np.concatenate(outs) if outs else np.empty((0, 1, 0))


class Forecaster:
    """Bars → forecasts through the shared feature pipeline and a predictor."""

    def __init__(self, info: ForecastModelInfo, spec: FeatureSpec, predictor: Predictor) -> None:
        if min_bars(spec, info.window) != info.min_bars:
            raise ValueError("info.min_bars does not match the feature spec and window")
        self.info = info
        self.spec = spec
        self.predictor = predictor

    def _run(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.empty((0, 1 + len(self.info.quantiles), self.info.horizon))
        out = np.asarray(self.predictor(x.astype(np.float32, copy=False)), dtype=np.float64)
        return out.reshape(len(x), -1, self.info.horizon)

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Raw feature windows (N, window, F) → (N, horizon) log returns."""
        return self._run(x)[:, 0, :]

    def predict_feature_paths(self, x: np.ndarray) -> np.ndarray:
        """Raw feature windows → point and quantile paths (N, 1 + len(quantiles), horizon)."""
        return self._run(x)

    def predict(self, windows: Sequence[BarWindow]) -> np.ndarray:
        """One forecast path per bar window: shape (len(windows), horizon), log returns.

        A window is a bar frame or a mapping of column arrays (what the server parses); all
        windows share one feature pass and one network call.
        """
        x = last_window_features(windows, self.spec, self.info.window)
        return self.predict_features(x)

    def predict_quantiles(self, windows: Sequence[BarWindow]) -> np.ndarray:
        """Quantile paths, shape (len(windows), len(info.quantiles), horizon)."""
        if not self.info.quantiles:
            raise ValueError(f"model {self.info.name} v{self.info.version} has no quantiles")
        x = last_window_features(windows, self.spec, self.info.window)
        return self._run(x)[:, 1:, :]

    def predict_paths(self, windows: Sequence[BarWindow]) -> np.ndarray:
        """Point and quantile paths in one pass: shape (len(windows), 1 + len(quantiles), horizon)."""
        return self._run(last_window_features(windows, self.spec, self.info.window))

    def predict_bars(self, bars: pd.DataFrame, anchors: np.ndarray) -> np.ndarray:
        """Forecasts at many anchors of one long bar frame (features computed once).

        Equal to ``predict`` on each window ``bars.iloc[a - min_bars + 1 : a + 1]``: every feature
        row reads only its own lookback.
        """
        anchors = np.asarray(anchors, dtype=np.int64)
        if len(anchors) and anchors.min() < self.info.min_bars - 1:
            raise FeatureError(f"anchors before bar {self.info.min_bars - 1} lack history")
        feats = compute_features(bars, self.spec).astype(np.float32)
        return self.predict_features(gather(feats, anchors, self.info.window))
