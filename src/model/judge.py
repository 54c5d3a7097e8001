"""Judging: the baselines, everyone on the same anchors, the champion on the candidate's data.

``evaluate_version`` re-runs the comparison for a registered version (``arena evaluate``): the
same time split of the same bars as in training (no tuning on the test split), plus the second
venue when given, and the purged walk-forward cross-validation (:mod:`~cryptoarena.model.cv`)
over every usable span of the bars, the registered model scored only outside its training span.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.data.records import NS_PER_S
from cryptoarena.model.baselines import EwmaDrift, Persistence, Ridge
from cryptoarena.model.book import has_book
from cryptoarena.model.cv import (
    CVConfig,
    cross_validate,
    default_fitters,
    usable_mask,
    window_frame,
)
from cryptoarena.model.evaluation import PERSISTENCE, dm_test, evaluate
from cryptoarena.model.features import BP, FeatureSpec, compute_targets
from cryptoarena.model.fit import Prepared, prepare
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo, Predictor
from cryptoarena.model.registry import CHAMPION, ModelNotFound, get_alias_version, load_forecaster
from cryptoarena.model.skill import forecast_skill
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
    horizon = next(iter(forecasters.values())).info.horizon
    actual = compute_targets(bars, horizon)[anchors]
    preds = {name: f.predict_bars(bars, anchors) for name, f in forecasters.items()}
    return evaluate(actual, preds), actual, preds


def wrap(predictor: Predictor, like: ForecastModelInfo, spec: FeatureSpec, name: str) -> Forecaster:
    return Forecaster(like.model_copy(update={"name": name, "quantiles": ()}), spec, predictor)


def training_span(run_id: str, tracking_uri: str) -> list[tuple[int, int]]:
    """Time range (ns) a registered model was trained and early-stopped on, from its run's
    tags (``data.first`` → ``data.val_last``); empty when the run does not say."""
    from cryptoarena.model.tracking import tracking_context
    from mlflow.exceptions import MlflowException

    if not run_id:
        return []
    with tracking_context(tracking_uri) as client:
        try:
            tags = client.get_run(run_id).data.tags
        except MlflowException:
            return []
    first, last = tags.get("data.first"), tags.get("data.val_last")
    if not first or not last:
        logger.warning("run %s does not record its training span; all windows scored", run_id)
        return []
    as_ns = [int(np.datetime64(t, "ns").astype(np.int64)) for t in (first, last)]
    return [(as_ns[0], as_ns[1])]


def load_champion(name: str, tracking_uri: str) -> tuple[str | None, Forecaster | None, str]:
    """(version, forecaster, error) of ``@champion``; (None, None, "") when there is none."""
    version = get_alias_version(name, CHAMPION, tracking_uri=tracking_uri)
    if version is None:
        return None, None, ""
    try:
        return version, load_forecaster(f"models:/{name}/{version}", tracking_uri=tracking_uri), ""
    except (ModelNotFound, ValueError) as exc:
        logger.warning("champion v%s cannot be loaded (%s); treated as absent", version, exc)
        return version, None, str(exc)


CANDIDATE = "candidate"
WINDOWS_FILE = "windows.parquet"  # per-window forecasts and errors of every evaluation


def gate_block(
    prepared: Prepared,
    candidate: Forecaster,
    champion: Forecaster | None,
    champion_span: list[tuple[int, int]],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The gate's evidence: candidate, champion and persistence on the newest untouched block.

    The block is ``prepared.split.test``: after the candidate's training and validation spans
    (plus the gap), never used to fit, stop or tune anything. The champion is scored on the same
    windows minus any inside its own training span (``champion_span``, widened by the gap), and
    all three tests use the windows both models have: DM of candidate and champion against
    persistence and the paired DM of candidate against champion. Returns (entries, the
    per-window errors)."""
    bars = prepared.bars
    ts = bars["ts"].to_numpy(np.int64)
    anchors = prepared.split.test
    if champion is not None and len(anchors):
        margin = prepared.split.gap * NS_PER_S
        anchors = anchors[usable_mask(ts, anchors, champion_span, margin)]
        if len(anchors) and champion.info.min_bars - 1 > anchors[0]:
            anchors = anchors[anchors >= champion.info.min_bars - 1]
    horizon = prepared.spec.horizon
    actual = compute_targets(bars, horizon)[anchors, -1].astype(np.float64)
    models = {CANDIDATE: candidate} | ({CHAMPION: champion} if champion is not None else {})
    errors = {
        name: (m.predict_bars(bars, anchors)[:, -1].astype(np.float64) - actual
               if len(anchors) else np.empty(0))
        for name, m in models.items()
    }  # fmt: skip
    out: dict[str, Any] = {
        "block": {
            "first": _iso(ts[anchors[0]]) if len(anchors) else "",
            "last": _iso(ts[anchors[-1]]) if len(anchors) else "",
            "n": len(anchors),
        }
    }
    for name, err in errors.items():
        sk = forecast_skill(err * BP, -actual * BP)
        stat, p = dm_test(err, -actual, horizon)
        out[name] = {
            "n": sk.n,
            "mae_bp": sk.mae,
            "skill": math.nan if sk.mse_skill is None else sk.mse_skill,
            "mae_skill": math.nan if sk.mae_skill is None else sk.mae_skill,
            "dm_stat": stat,
            "dm_p": p,
        }
    if champion is not None:
        stat, p = dm_test(errors[CANDIDATE], errors[CHAMPION], horizon)
        out["versus_champion"] = {"n": len(anchors), "dm_stat": stat, "dm_p": p}
    frames = [
        window_frame(name, -1, anchors, ts, actual, err + actual) for name, err in errors.items()
    ]
    frames.append(window_frame(PERSISTENCE, -1, anchors, ts, actual, np.zeros_like(actual)))
    return out, pd.concat(frames, ignore_index=True).assign(section="gate")


def log_evaluation(
    report: dict[str, Any], windows: pd.DataFrame, *, tracking_uri: str, experiment: str
) -> str:
    """One MLflow run per evaluation: the report and every window's forecast and error
    (``report/windows.parquet``), tagged with the version judged. Returns the run id."""
    import json
    import tempfile
    from pathlib import Path

    import mlflow
    from cryptoarena.model.tracking import ensure_experiment, tracking_context

    info = report["model"]
    with tracking_context(tracking_uri) as client:
        exp_id = ensure_experiment(client, experiment, tracking_uri)
        with mlflow.start_run(experiment_id=exp_id, run_name=f"evaluate v{info['version']}") as run:
            mlflow.set_tags(
                {"kind": "evaluation", "model.name": info["name"],
                 "model.version": str(info["version"]), "data.hash": report["data"]["hash"]}
            )  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
                windows.to_parquet(out / WINDOWS_FILE)
                mlflow.log_artifacts(str(out), artifact_path="report")
            return str(run.info.run_id)


def _iso(t: int) -> str:
    return str(np.datetime64(int(t), "ns").astype("datetime64[s]"))


def pair_entry(cv: dict[str, Any], a: str, b: str) -> dict[str, Any] | None:
    """The paired test of ``a`` against ``b`` (statistic sign: negative = ``a`` better)."""
    for row in cv.get("pairwise", []):
        if (row["a"], row["b"]) == (a, b):
            return dict(row)
        if (row["a"], row["b"]) == (b, a):
            flipped = dict(row, a=a, b=b)
            for key in ("dm_stat", "dm_hac_stat"):
                flipped[key] = -row[key]
            return flipped
    return None


def evaluate_version(
    model_uri: str,
    *,
    tracking_uri: str,
    bars: pd.DataFrame,
    second_venue: pd.DataFrame | None = None,
    cv: CVConfig | None = None,
    refit_lstm: bool = False,
    windows: list[pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """A registered forecaster vs the baselines on the test split of ``bars`` (and venue 2),
    and cross-validated (``cv``; ``second_venue_cv``). ``windows``: gets one frame of every
    scored window's forecast and error (test split and CV folds; :func:`window_frame`)."""
    model = load_forecaster(model_uri, tracking_uri=tracking_uri)
    if second_venue is not None and model.spec.book and not has_book(second_venue):
        logger.warning("the second venue has no order book: a book model is not judged there")
        second_venue = None
    prepared = prepare(bars, model.spec, model.info.window)
    everyone = {LSTM: model} | {
        k: wrap(p, model.info, model.spec, k) for k, p in baselines(prepared).items()
    }
    test = prepared.split.test
    results, actual, preds = evaluate_forecasters(prepared.bars, test, everyone)
    ts = prepared.bars["ts"].to_numpy(np.int64)
    frames = [
        window_frame(m, -1, test, ts, actual[:, -1], p[:, -1]).assign(section="test")
        for m, p in preds.items()
    ]
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
    span = training_span(model.info.run_id, tracking_uri)
    fitters = default_fitters(model.spec)
    if model.spec.book:  # what the book adds: the same ridge on the trade features only
        from cryptoarena.model.cv import ridge_fitter
        from cryptoarena.model.features import BOOK_FEATURES

        names = model.spec.names
        fitters["ridge_trades"] = ridge_fitter(
            columns=[i for i, n in enumerate(names) if n not in BOOK_FEATURES]
        )
    if refit_lstm:  # the model's configuration retrained on every fold's past (slow)
        from cryptoarena.model.fit import lstm_fitter
        from cryptoarena.model.lstm import LSTMConfig

        config = LSTMConfig.model_validate(model.info.train_config or {"window": model.info.window})
        fitters[f"{LSTM}_refit"] = lstm_fitter(config, model.spec)
    cv_frames: list[pd.DataFrame] = []
    report["cv"] = cross_validate(
        bars, spec=model.spec, window=model.info.window, fitters=fitters, fixed={LSTM: model},
        exclude={LSTM: span}, cfg=cv, windows=cv_frames,
    )  # fmt: skip
    frames += [f.assign(section="cv") for f in cv_frames]
    if windows is not None:
        windows.append(pd.concat(frames, ignore_index=True))
    if second_venue is not None:
        report["second_venue_cv"] = cross_validate(
            second_venue, spec=model.spec, window=model.info.window, fixed={LSTM: model},
            exclude={LSTM: span}, cfg=cv,
        )  # fmt: skip
    return report
