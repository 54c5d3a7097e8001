"""The order-book ridge: the one forecaster with evidence so far (docs/model.md: on the Bitstamp
day the book ridge beats the trades-only ridge, pooled DM p 2e-7), as a forecaster an arena run
can trade.

It is the ridge of ``arena evaluate`` (:func:`cryptoarena.model.cv.ridge_fitter`, α = 10, its
scaler fitted on the training anchors only) on the features of
``FeatureSpec(book=True)`` (:mod:`cryptoarena.model.features`: the 18 trade features and the 5
book features), fitted on the first part of a day that carries a book and judged against
persistence on the rest with the project's interval and test (moving-block bootstrap of the
MSE skill, modified Diebold–Mariano). Nothing is tuned on the held-out part: α is fixed, so
there is no validation split (the training span is also the "validated" span the run records).
The fit is tracked as an MLflow run with the same ``data.*`` tags a trained LSTM has, so an
arena run reads which bars it saw the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from cryptoarena.data.records import NS_PER_S
from cryptoarena.model.cv import CVConfig, ridge_fitter, skill_interval
from cryptoarena.model.evaluation import dm_test
from cryptoarena.model.features import (
    BP,
    FeatureSpec,
    compute_features,
    compute_targets,
    min_bars,
)
from cryptoarena.model.fit import data_fingerprint
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo
from cryptoarena.model.skill import forecast_skill
from cryptoarena.model.tracking import ensure_experiment, tracking_context

logger = logging.getLogger(__name__)

NAME = "book-ridge"
EXPERIMENT = "book-ridge"
ALPHA = 10.0  # the ridge of arena evaluate (cv.ridge_fitter's default)
WINDOW = 1  # a ridge reads the last bar's features only


@dataclass(frozen=True)
class BookRidgeFit:
    """A fitted book ridge and the bars it was fitted on."""

    forecaster: Forecaster
    first_ns: int  # the first bar its training features read
    train_last_ns: int  # the last training anchor (its label reaches ``horizon`` s further)
    # Bars from here on were never a training label (the last label's bar closes here): the
    # end trading.forecasts.local.trained_span reads back from the run's tags.
    until_ns: int
    n_train: int


def _when(ts_ns: int) -> str:
    return str(np.datetime64(int(ts_ns), "ns").astype("datetime64[s]"))


def _usable(feats: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.isfinite(feats).all(axis=1) & np.isfinite(targets).all(axis=1)


def fit_book_ridge(bars: pd.DataFrame, train_until_ns: int, horizon: int = 15) -> BookRidgeFit:
    """Fit on the anchors whose whole label lies before ``train_until_ns`` (bars with the book
    columns of :mod:`cryptoarena.model.book`, one per second, close = mid)."""
    bars = bars.reset_index(drop=True)
    spec = FeatureSpec(horizon=horizon, book=True)
    feats = compute_features(bars, spec)
    targets = compute_targets(bars, horizon)
    ts = bars["ts"].to_numpy(np.int64)
    # An anchor's label is the close `horizon` bars later: it must be a training bar too.
    label_ts = np.full(len(ts), np.iinfo(np.int64).max)
    label_ts[: len(ts) - horizon] = ts[horizon:]
    train = np.flatnonzero(_usable(feats, targets) & (label_ts < train_until_ns))
    if len(train) < 10 * spec.n_features:
        raise ValueError(
            f"{len(train)} training anchors before {_when(train_until_ns)}: too few for a ridge "
            f"on {spec.n_features} features"
        )
    predictor = ridge_fitter(ALPHA)(feats.astype(np.float32), targets, train)
    last = int(train[-1])
    info = ForecastModelInfo(
        name=NAME,
        version=data_fingerprint(bars.iloc[: last + horizon + 1])[:8],
        run_id="",
        horizon=horizon,
        window=WINDOW,
        min_bars=min_bars(spec, WINDOW),
        feature_names=spec.names,
    )
    return BookRidgeFit(
        forecaster=Forecaster(info, spec, predictor),
        first_ns=int(ts[0]),
        train_last_ns=int(ts[last]),
        until_ns=int(ts[last]) + (horizon + 1) * NS_PER_S,
        n_train=len(train),
    )


def held_out_skill(
    fit: BookRidgeFit, bars: pd.DataFrame, cfg: CVConfig | None = None
) -> dict[str, Any]:
    """The fit judged against persistence on every bar after its training labels, at its
    horizon: both skills, the MSE skill's 95 % block-bootstrap interval, and the modified DM
    test (HLN) of squared errors — the numbers ``arena evaluate`` reports for a model."""
    cfg = cfg or CVConfig()
    bars = bars.reset_index(drop=True)
    spec, horizon = fit.forecaster.spec, fit.forecaster.info.horizon
    feats = compute_features(bars, spec)
    targets = compute_targets(bars, horizon)
    ts = bars["ts"].to_numpy(np.int64)
    anchors = np.flatnonzero(_usable(feats, targets) & (ts >= fit.until_ns))
    if not len(anchors):
        raise ValueError(f"no held-out bars after {_when(fit.until_ns)}")
    pred = fit.forecaster.predict_bars(bars, anchors)[:, horizon - 1]
    actual = targets[anchors, horizon - 1]
    err, err_base = pred - actual, -actual  # persistence forecasts a zero return
    sk = forecast_skill(err * BP, err_base * BP)
    lo, hi = skill_interval(err**2, err_base**2, cfg)
    stat, p = dm_test(err, err_base, horizon, "hln")
    return {
        "n": sk.n,
        "first": _when(int(ts[anchors[0]])),
        "last": _when(int(ts[anchors[-1]])),
        "mae_bp": sk.mae,
        "mae_bp_persistence": sk.mae_base,
        "rmse_bp": sk.rmse,
        "rmse_bp_persistence": sk.rmse_base,
        "skill": sk.mse_skill,
        "skill_lo": lo,
        "skill_hi": hi,
        "mae_skill": sk.mae_skill,
        "dm_stat": stat,
        "dm_p": p,
    }


def track(
    fit: BookRidgeFit, held_out: dict[str, Any], tracking_uri: str, data_label: str
) -> BookRidgeFit:
    """Log the fit as an MLflow run (experiment ``book-ridge``): its feature spec, α, training
    span as the ``data.*`` tags a trained model has, and its held-out numbers. Returns the fit
    with the run's id in its forecaster's info."""
    spec = fit.forecaster.spec
    with tracking_context(tracking_uri) as client:
        exp_id = ensure_experiment(client, EXPERIMENT, tracking_uri)
        with mlflow.start_run(experiment_id=exp_id) as run:
            mlflow.log_params({"ridge.alpha": ALPHA, "ridge.window": WINDOW})
            mlflow.log_params({f"features.{k}": v for k, v in spec.model_dump().items()})
            mlflow.set_tags(
                {
                    "model.name": NAME,
                    "data.label": data_label,
                    "data.first": _when(fit.first_ns),
                    "data.train_last": _when(fit.train_last_ns),
                    # α is fixed: nothing was validated, the training span is all it saw.
                    "data.val_last": _when(fit.train_last_ns),
                    "data.train_n": str(fit.n_train),
                    "held_out.first": str(held_out["first"]),
                    "held_out.last": str(held_out["last"]),
                }
            )
            mlflow.log_metrics(
                {
                    f"held_out.{k}": float(v)
                    for k, v in held_out.items()
                    if isinstance(v, int | float) and v is not None and np.isfinite(v)
                }
            )
            run_id = run.info.run_id
    info = fit.forecaster.info.model_copy(update={"run_id": run_id})
    forecaster = Forecaster(info, spec, fit.forecaster.predictor)
    logger.info("book ridge tracked as run %s (%s)", run_id, tracking_uri)
    return BookRidgeFit(forecaster, fit.first_ns, fit.train_last_ns, fit.until_ns, fit.n_train)
