"""Drift checks: features (recent bars vs the training reference saved with the model) and
forecast errors (recent vs reference), as a JSON report, a PNG chart and metrics for MLflow.

Distances, not p-values: with thousands of 1-second rows a p-value test (K-S) flags every tiny
shift, while a distance with a threshold says how far the distribution moved. Every column is
standardised first (features with the champion's saved training scaler, errors with the
reference's own spread), so a distance is in units of the training standard deviation whatever
the feature's scale: return features have std 1e-5–1e-4, and a distance on raw values (or one
normed by a floored std, as Evidently's is) under-reports their drift by orders of magnitude.
The verdict says whether a retrain should be triggered, and why.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.model.features import BP, FeatureSpec, Scaler, compute_features, compute_targets
from cryptoarena.model.forecaster import Forecaster
from scipy import stats

logger = logging.getLogger(__name__)

DISTANCE_METHODS = ("wasserstein", "psi")
ERROR_COLUMNS = ("error_bp", "abs_error_bp")


@dataclass(frozen=True)
class DriftConfig:
    method: str = "wasserstein"
    threshold: float = 0.1  # a column drifts when its distance is at least this
    drift_share: float = 0.5  # the data set drifts when at least this share of columns drift
    max_rows: int = 5000  # rows per side compared (evenly thinned)
    error_ratio_limit: float = 1.5  # retrain when recent MAE > limit × reference MAE

    def __post_init__(self) -> None:
        if self.method not in DISTANCE_METHODS:
            raise ValueError(f"drift method must be one of {DISTANCE_METHODS}, got {self.method!r}")
        if not 0 < self.drift_share <= 1 or self.threshold <= 0 or self.max_rows < 10:
            raise ValueError("drift_share in (0, 1], threshold > 0 and max_rows >= 10 required")


@dataclass
class ColumnDrift:
    scores: dict[str, float]
    drifted: list[str]
    share: float
    detected: bool


@dataclass
class DriftResult:
    features: ColumnDrift
    errors: ColumnDrift | None
    mae_bp_current: float
    mae_bp_reference: float | None
    should_retrain: bool
    reasons: list[str]
    reports: dict[str, Path] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow."""
        out = {
            "drift.features.share": self.features.share,
            "drift.features.n_drifted": float(len(self.features.drifted)),
            "drift.errors.mae_bp_current": self.mae_bp_current,
            "drift.should_retrain": float(self.should_retrain),
        }
        out |= {f"drift.feature.{k}": v for k, v in self.features.scores.items()}
        if self.mae_bp_reference is not None:
            out["drift.errors.mae_bp_reference"] = self.mae_bp_reference
        if self.errors is not None:
            out["drift.errors.share"] = self.errors.share
            out |= {f"drift.error.{k}": v for k, v in self.errors.scores.items()}
        return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}

    def summary(self) -> dict[str, Any]:
        return {
            "should_retrain": self.should_retrain,
            "reasons": self.reasons,
            "features": vars(self.features),
            "errors": vars(self.errors) if self.errors else None,
            "mae_bp_current": self.mae_bp_current,
            "mae_bp_reference": self.mae_bp_reference,
            "reports": {k: str(v) for k, v in self.reports.items()},
        }


def _thin(frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    step = max(1, math.ceil(len(frame) / max_rows))
    return frame.iloc[::step].reset_index(drop=True)


def feature_frame(bars: pd.DataFrame, spec: FeatureSpec, max_rows: int = 5000) -> pd.DataFrame:
    """The model's input features of every bar past the warm-up (finite rows), thinned."""
    feats = compute_features(bars, spec)[spec.lookback :]
    frame = pd.DataFrame(feats, columns=list(spec.names))
    return _thin(frame[np.isfinite(feats).all(axis=1)], max_rows)


def forecast_errors(
    forecaster: Forecaster, bars: pd.DataFrame, max_rows: int = 5000
) -> pd.DataFrame:
    """Headline-horizon forecast errors (bp) of ``forecaster`` at every usable bar of ``bars``."""
    h = forecaster.info.horizon
    first, last = forecaster.info.min_bars - 1, len(bars) - h - 1
    if last < first:
        raise ValueError(f"{len(bars)} bars are too few for errors (need > {first + h + 1})")
    step = max(1, math.ceil((last - first + 1) / max_rows))
    anchors = np.arange(first, last + 1, step)
    actual = compute_targets(bars, h)[anchors, -1]
    pred = forecaster.predict_bars(bars, anchors)[:, -1]
    err = (pred - actual) * BP
    return pd.DataFrame({"error_bp": err, "abs_error_bp": np.abs(err)})


def journal_errors(predictions: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Errors of journaled predictions whose realised price is known (trading's documents:
    ``predicted_price`` and ``realised_price``)."""
    rows = [
        math.log(float(p["predicted_price"]) / float(p["realised_price"])) * BP
        for p in predictions
        if p.get("predicted_price") and p.get("realised_price")
    ]
    err = np.asarray(rows, dtype=np.float64)
    return pd.DataFrame({"error_bp": err, "abs_error_bp": np.abs(err)})


def _distance(ref: np.ndarray, cur: np.ndarray, method: str) -> float:
    """Distance between two standardised samples (finite values only)."""
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    if method == "wasserstein":  # in units of the training std (the inputs are standardised)
        return float(stats.wasserstein_distance(ref, cur))
    # PSI over the reference's deciles (scale-free); a small floor keeps empty bins finite.
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)[1:-1]))
    p = np.bincount(np.searchsorted(edges, ref), minlength=len(edges) + 1) / len(ref)
    q = np.bincount(np.searchsorted(edges, cur), minlength=len(edges) + 1) / len(cur)
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def column_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    cfg: DriftConfig,
    chart: Path | None = None,
    *,
    scaler: Scaler | None = None,
) -> ColumnDrift:
    """Per-column distance on standardised values; optionally saves a bar chart (PNG).

    ``scaler`` (the champion's training scaler, over ``reference``'s columns) standardises both
    sides; without it the reference's own mean and std are used. Either way no column's distance
    depends on its scale.
    """
    columns = [c for c in reference.columns if c in current.columns]
    if not columns or len(reference) < 10 or len(current) < 10:
        raise ValueError("drift needs shared columns and at least 10 rows on each side")
    ref_raw = _thin(reference[columns], cfg.max_rows).to_numpy(np.float64)
    cur_raw = _thin(current[columns], cfg.max_rows).to_numpy(np.float64)
    if scaler is not None:
        if len(scaler.mean) != len(reference.columns):
            raise ValueError("the scaler does not match the reference's columns")
        keep = [list(reference.columns).index(c) for c in columns]
        scaler = Scaler(
            mean=tuple(scaler.mean[i] for i in keep), std=tuple(scaler.std[i] for i in keep)
        )
    else:
        finite = ref_raw[np.isfinite(ref_raw).all(axis=1)]
        scaler = Scaler.fit(finite if len(finite) else np.zeros((1, len(columns))))
    ref, cur = scaler.transform(ref_raw), scaler.transform(cur_raw)
    scores = {c: _distance(ref[:, i], cur[:, i], cfg.method) for i, c in enumerate(columns)}
    if chart is not None:
        _chart(scores, cfg, chart)
    drifted = sorted(c for c, s in scores.items() if s >= cfg.threshold)
    share = len(drifted) / len(columns)
    return ColumnDrift(scores, drifted, share, share >= cfg.drift_share)


def _chart(scores: dict[str, float], cfg: DriftConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(scores)
    values = [scores[n] if math.isfinite(scores[n]) else 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1.2))
    colors = ["tab:red" if v >= cfg.threshold else "tab:blue" for v in values]
    ax.barh(names, values, color=colors)
    ax.axvline(cfg.threshold, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"{cfg.method} distance (standardised)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def check_drift(
    forecaster: Forecaster,
    reference_features: pd.DataFrame,
    current_bars: pd.DataFrame,
    *,
    reference_bars: pd.DataFrame | None = None,
    current_errors: pd.DataFrame | None = None,
    cfg: DriftConfig | None = None,
    out_dir: Path | None = None,
    scaler: Scaler | None = None,
) -> DriftResult:
    """Feature drift (current bars vs the training reference) and forecast-error drift.

    Current errors come from ``current_errors`` (e.g. :func:`journal_errors`) or are computed by
    running the model on ``current_bars``. Reference errors come from ``reference_bars`` when
    given; otherwise only the MAE is compared with the model's held-out MAE. ``scaler`` is the
    model's training scaler (features are standardised with it before any distance).
    """
    cfg = cfg or DriftConfig()
    chart = (lambda name: out_dir / name) if out_dir is not None else (lambda name: None)
    current = feature_frame(current_bars, forecaster.spec, cfg.max_rows)
    features = column_drift(
        reference_features, current, cfg, chart("feature_drift.png"), scaler=scaler
    )
    errors_now = (
        current_errors
        if current_errors is not None
        else forecast_errors(forecaster, current_bars, cfg.max_rows)
    )
    mae_now = float(errors_now["abs_error_bp"].mean())
    errors: ColumnDrift | None = None
    mae_ref = forecaster.info.metrics.get("mae_bp")
    if reference_bars is not None:
        errors_ref = forecast_errors(forecaster, reference_bars, cfg.max_rows)
        mae_ref = float(errors_ref["abs_error_bp"].mean())
        errors = column_drift(errors_ref, errors_now, cfg, chart("error_drift.png"))
    reasons = []
    if features.detected:
        reasons.append(
            f"feature drift: {len(features.drifted)}/{len(features.scores)} features "
            f"({cfg.method} >= {cfg.threshold})"
        )
    if mae_ref is not None and mae_ref > 0 and mae_now > cfg.error_ratio_limit * mae_ref:
        reasons.append(
            f"forecast MAE {mae_now:.2f} bp > {cfg.error_ratio_limit} × {mae_ref:.2f} bp"
        )
    if errors is not None and errors.detected and mae_ref is not None and mae_now > mae_ref:
        reasons.append("forecast errors drifted and grew")
    result = DriftResult(features, errors, mae_now, mae_ref, bool(reasons), reasons)
    if out_dir is not None:
        result.reports = {p.stem: p for p in out_dir.glob("*_drift.png")}
        summary = out_dir / "drift.json"
        summary.write_text(json.dumps(result.summary(), indent=2, default=str))
        result.reports["summary"] = summary
    logger.info("drift: retrain=%s %s", result.should_retrain, "; ".join(reasons) or "no drift")
    return result


def log_drift(
    result: DriftResult, *, tracking_uri: str, experiment: str, model_name: str, version: str
) -> str:
    """One MLflow run per check: metrics, the verdict as tags, the report files as artifacts."""
    import mlflow
    from cryptoarena.model.tracking import ensure_experiment, tracking_context

    with tracking_context(tracking_uri) as client:
        exp_id = ensure_experiment(client, experiment, tracking_uri)
        with mlflow.start_run(
            experiment_id=exp_id, run_name=f"drift {model_name} v{version}"
        ) as run:
            mlflow.set_tags(
                {
                    "kind": "drift",
                    "model.name": model_name,
                    "model.version": version,
                    "drift.should_retrain": str(result.should_retrain),
                    "drift.reasons": "; ".join(result.reasons) or "none",
                }
            )
            mlflow.log_metrics(result.metrics())
            for path in result.reports.values():
                mlflow.log_artifact(str(path), artifact_path="drift")
            return str(run.info.run_id)


def run_drift_check(
    current_bars: pd.DataFrame,
    *,
    tracking_uri: str,
    model_name: str,
    out_dir: Path,
    reference_bars: pd.DataFrame | None = None,
    current_errors: pd.DataFrame | None = None,
    cfg: DriftConfig | None = None,
    alias: str = "champion",
) -> tuple[DriftResult, str]:
    """Load ``models:/<name>@<alias>`` and its training reference, check, and log to MLflow."""
    from cryptoarena.config import get_settings
    from cryptoarena.model.registry import download_reference, download_scaler, load_forecaster

    uri = f"models:/{model_name}@{alias}"
    forecaster = load_forecaster(uri, tracking_uri=tracking_uri)
    version_uri = f"models:/{model_name}/{forecaster.info.version}"
    ref_path = download_reference(version_uri, tracking_uri=tracking_uri, dst=out_dir / "reference")
    reference = pd.read_parquet(ref_path)
    scaler = download_scaler(version_uri, tracking_uri=tracking_uri)
    result = check_drift(
        forecaster,
        reference,
        current_bars,
        reference_bars=reference_bars,
        current_errors=current_errors,
        cfg=cfg,
        out_dir=out_dir,
        scaler=scaler,
    )
    run_id = log_drift(
        result,
        tracking_uri=tracking_uri,
        experiment=get_settings().mlflow.experiment,
        model_name=model_name,
        version=forecaster.info.version,
    )
    return result, run_id
