"""Judging: the baselines, everyone on the same anchors, the champion on the candidate's data.

``evaluate_version`` re-runs the comparison for a registered version (``arena evaluate``): the
same time split of the same bars as in training (no tuning on the test split), plus the second
venue when given.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.model.baselines import EwmaDrift, Persistence, Ridge
from cryptoarena.model.evaluation import PERSISTENCE, evaluate
from cryptoarena.model.features import FeatureSpec
from cryptoarena.model.fit import Prepared, prepare
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo, Predictor
from cryptoarena.model.registry import CHAMPION, ModelNotFound, get_alias_version, load_forecaster
from cryptoarena.model.windows import valid_anchors

logger = logging.getLogger(__name__)

LSTM = "lstm"


def baselines(prepared: Prepared) -> dict[str, Predictor]:
    """The three baselines, fitted (ridge) on the training split only."""
    h = prepared.spec.horizon
    a = prepared.split.train
    ridge = Ridge(prepared.scaler).fit(prepared.features[a], prepared.targets[a])
    return {
        PERSISTENCE: Persistence(h),
        "ewma_drift": EwmaDrift(prepared.spec, h),
        "ridge": ridge,
    }


def evaluate_forecasters(
    bars: pd.DataFrame, anchors: np.ndarray, forecasters: dict[str, Forecaster]
) -> tuple[dict[str, dict[str, Any]], np.ndarray, dict[str, np.ndarray]]:
    """Everyone on the same anchors of one bar frame: (metrics, actual, predictions)."""
    from cryptoarena.model.features import compute_targets

    horizon = next(iter(forecasters.values())).info.horizon
    actual = compute_targets(bars, horizon)[anchors]
    preds = {name: f.predict_bars(bars, anchors) for name, f in forecasters.items()}
    return evaluate(actual, preds), actual, preds


def wrap(predictor: Predictor, like: ForecastModelInfo, spec: FeatureSpec, name: str) -> Forecaster:
    return Forecaster(like.model_copy(update={"name": name, "quantiles": ()}), spec, predictor)


def champion_on(
    name: str, tracking_uri: str, bars: pd.DataFrame, anchors: np.ndarray, actual: np.ndarray
) -> dict[str, Any]:
    """The current champion's MSE on the same held-out anchors (empty if there is none)."""
    version = get_alias_version(name, CHAMPION, tracking_uri=tracking_uri)
    if version is None:
        return {}
    try:
        champ = load_forecaster(f"models:/{name}/{version}", tracking_uri=tracking_uri)
        usable = anchors >= champ.info.min_bars - 1
        pred = champ.predict_bars(bars, anchors[usable])
    except (ModelNotFound, ValueError) as exc:
        logger.warning(
            "champion v%s cannot be evaluated here (%s); treated as absent", version, exc
        )
        return {"version": version, "error": str(exc)}
    mse = float(np.mean((pred[:, -1] - actual[usable][:, -1]) ** 2))
    return {"version": version, "mse": mse, "n": int(usable.sum())}


def evaluate_version(
    model_uri: str,
    *,
    tracking_uri: str,
    bars: pd.DataFrame,
    second_venue: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """A registered forecaster vs the baselines on the test split of ``bars`` (and venue 2)."""
    model = load_forecaster(model_uri, tracking_uri=tracking_uri)
    prepared = prepare(bars, model.spec, model.info.window)
    everyone = {LSTM: model} | {
        k: wrap(p, model.info, model.spec, k) for k, p in baselines(prepared).items()
    }
    results, _, _ = evaluate_forecasters(prepared.bars, prepared.split.test, everyone)
    report: dict[str, Any] = {
        "model": model.info.model_dump(),
        "data": {"hash": prepared.data_hash, **prepared.span},
        "test": results,
    }
    if second_venue is not None:
        anchors = valid_anchors(
            len(second_venue),
            window=model.info.window,
            lookback=model.spec.lookback,
            horizon=model.info.horizon,
        )
        report["second_venue"] = evaluate_forecasters(second_venue, anchors, everyone)[0]
    return report
