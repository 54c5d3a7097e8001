"""One skill: ``arena evaluate`` (model.evaluation), the trading report (results.forecasts) and
the dashboard (dashboard.reader) give the same MSE and MAE skill over the same forecasts.

Issue #20: the dashboard showed "skill +11.5 %" (MSE, in simple returns) next to a trading report
whose skill was MAE-based; by MAE every model lost to persistence. Fails before: the trading
report's ``skill`` was 1 − MAE ratio and neither it nor the dashboard had ``mae_skill``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptoarena.dashboard import schemas as s
from cryptoarena.dashboard.reader import accuracy
from cryptoarena.model.baselines import EwmaDrift
from cryptoarena.model.datasets import load_bars
from cryptoarena.model.evaluation import PERSISTENCE, evaluate
from cryptoarena.model.features import BP, FeatureSpec, compute_features, compute_targets
from cryptoarena.model.skill import forecast_skill
from cryptoarena.model.windows import gather, valid_anchors
from cryptoarena.trading.results.forecasts import forecast_quality

WINDOW = 20


@pytest.fixture(scope="module")
def forecasts() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Real bars, the EWMA-drift baseline's 15 s forecasts at every 7th usable anchor."""
    bars = load_bars(max_bars=6000)
    spec = FeatureSpec()
    anchors = valid_anchors(len(bars), window=WINDOW, lookback=spec.lookback, horizon=15)[::7]
    feats = compute_features(bars, spec)
    actual = compute_targets(bars, 15)[anchors].astype(np.float64)
    pred = np.asarray(EwmaDrift(spec, 15)(gather(feats, anchors, WINDOW)))[:, 0, :]
    return bars, anchors, actual, pred


def test_the_same_forecasts_give_the_same_skills_everywhere(forecasts) -> None:  # type: ignore[no-untyped-def]
    bars, anchors, actual, pred = forecasts
    cli = evaluate(actual, {"model": pred, PERSISTENCE: np.zeros_like(actual)})["model"]
    # The two definitions differ here, so a place that mixes them up cannot pass.
    assert abs(cli["skill"] - cli["mae_skill"]) > 0.05
    # The same forecasts as the worker journals them: prices at the forecast and the horizon.
    base = bars["close"].to_numpy(np.float64)[anchors]
    predicted = base * np.exp(pred[:, -1])
    realised = base * np.exp(actual[:, -1])
    docs = [
        {"ts_ns": int(t), "base_price": b, "predicted_price": p, "realised_price": r,
         "model_version": "3", "horizon_s": 15, "target_ts_ns": int(t) + 15 * 10**9, "path": []}
        for t, b, p, r in zip(bars["ts"].to_numpy()[anchors], base, predicted, realised,
                              strict=True)
    ]  # fmt: skip
    (report,) = forecast_quality(docs)
    dash = accuracy([s.Prediction(**{k: d[k] for k in s.Prediction.model_fields}) for d in docs])
    assert report.predictions == dash.resolved == cli["n"] == len(anchors)
    # exp/log round trips of prices: relative error ~1e-12 of a few-bp figure.
    for got in (report, dash):
        assert got.skill == pytest.approx(cli["skill"], rel=1e-6, abs=1e-9)
        assert got.mae_skill == pytest.approx(cli["mae_skill"], rel=1e-6, abs=1e-9)
    assert report.mae_bps == pytest.approx(cli["mae_bp"], rel=1e-6)
    assert dash.mae_bps == pytest.approx(cli["mae_bp"], rel=1e-6)


def test_skill_definition() -> None:
    sk = forecast_skill(np.array([1.0, -1.0, np.nan]), np.array([2.0, 0.0, 5.0]))
    assert sk.n == 2  # only pairs where both errors are finite
    assert sk.mse_skill == pytest.approx(1 - 1.0 / 2.0)
    assert sk.mae_skill == pytest.approx(1 - 1.0 / 1.0)
    assert forecast_skill(np.zeros(3), np.zeros(3)).mse_skill is None  # nothing to beat
    assert forecast_skill(np.array([]), np.array([])).n == 0
    with pytest.raises(ValueError, match="differ in length"):
        forecast_skill(np.zeros(2), np.zeros(3))
    assert BP == 1e4
