"""Drift checks: features (recent bars vs the training reference saved with the model) and
forecast errors (recent vs reference), as a JSON report, a PNG chart and metrics for MLflow.

Distances, not p-values: with thousands of 1-second rows a p-value test (K-S) flags every tiny
shift, while a distance with a threshold says how far the distribution moved. Every column is
standardised first (features with the champion's saved training scaler, errors with the
reference's own spread), so a distance is in units of the training standard deviation whatever
the feature's scale: return features have std 1e-5–1e-4, and a distance on raw values (or one
normed by a floored std, as Evidently's is) under-reports their drift by orders of magnitude.

Calibrated on an in-span null (:func:`calibrate`): at training time, sliding windows of
``window_s`` seconds inside the training span itself are compared with the training reference;
their distances are what normal intraday variation looks like. A feature's p-value is the share
of in-span windows at least as far from the reference; the data set drifts when the largest
feature distance relative to its in-span median exceeds the (1 − alpha) quantile of the same
statistic over the in-span windows, so in-span windows raise a false alarm at most ``alpha`` of
the time (5 % by default). The retrain rule is a skill-degradation test: the champion's recent
MSE skill against persistence with a 95 % block-bootstrap interval, degraded when the whole
interval lies below min(0, its held-out skill).
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
from cryptoarena.model.skill import forecast_skill
from pydantic import BaseModel
from scipy import stats

logger = logging.getLogger(__name__)

DISTANCE_METHODS = ("wasserstein", "psi")
ERROR_COLUMNS = ("error_bp", "abs_error_bp")
CALIBRATION_FILE = "drift_calibration.json"


@dataclass(frozen=True)
class DriftConfig:
    method: str = "wasserstein"
    # Used only for a model without a calibration (registered before it existed): a column
    # drifts at this distance, the data set at this share of columns (false-alarm rate unknown).
    threshold: float = 0.1
    drift_share: float = 0.5
    max_rows: int = 5000  # rows per side compared (evenly thinned)
    alpha: float = 0.05  # false-alarm rate on in-span windows (calibrated) and test level
    window_s: int = 1800  # length of the windows the calibration compares (a check's window)
    stride_s: int = 300  # step between calibration windows
    block_s: int = 300  # bootstrap block of the skill interval (volatility clusters)

    def __post_init__(self) -> None:
        if self.method not in DISTANCE_METHODS:
            raise ValueError(f"drift method must be one of {DISTANCE_METHODS}, got {self.method!r}")
        if not 0 < self.drift_share <= 1 or self.threshold <= 0 or self.max_rows < 10:
            raise ValueError("drift_share in (0, 1], threshold > 0 and max_rows >= 10 required")
        if not 0 < self.alpha < 0.5 or self.window_s < 60 or self.stride_s < 1:
            raise ValueError("drift needs 0 < alpha < 0.5, window_s >= 60 and stride_s >= 1")


class DriftCalibration(BaseModel):
    """The in-span null of one model's drift check (saved with the model as
    ``extra_files/drift_calibration.json``)."""

    method: str
    window_s: int
    stride_s: int
    alpha: float
    null: dict[str, list[float]]  # per feature: in-span window distances, sorted
    scale: dict[str, float]  # per feature: the median in-span distance
    threshold: float  # (1 − alpha) quantile of max_j distance_j / scale_j in-span

    @property
    def n_windows(self) -> int:
        return len(next(iter(self.null.values()), []))

    def p_value(self, feature: str, distance: float) -> float:
        """Share of in-span windows at least as far from the reference (with the +1 of an
        empirical p-value, so never 0)."""
        null = np.asarray(self.null[feature])
        if not math.isfinite(distance):
            return float("nan")
        return float((1 + np.sum(null >= distance)) / (1 + len(null)))

    def statistic(self, scores: Mapping[str, float]) -> float:
        """The data set's statistic: the largest distance relative to its in-span median."""
        ratios = [
            scores[c] / self.scale[c]
            for c in self.scale
            if c in scores and math.isfinite(scores[c]) and self.scale[c] > 0
        ]
        return max(ratios, default=float("nan"))


@dataclass
class ColumnDrift:
    scores: dict[str, float]
    drifted: list[str]
    share: float
    detected: bool
    p_values: dict[str, float] = field(default_factory=dict)  # calibrated checks only
    statistic: float | None = None  # max distance / in-span median (calibrated)
    threshold: float | None = None  # its (1 − alpha) in-span quantile
    calibrated: bool = False


@dataclass
class SkillCheck:
    """The retrain rule: recent MSE skill vs persistence with a 95 % block-bootstrap interval,
    degraded when the interval lies entirely below ``bar`` = min(0, the held-out skill)."""

    n: int
    skill: float
    ci95: tuple[float, float]
    mae_skill: float
    reference_skill: float | None
    bar: float
    degraded: bool


@dataclass
class DriftResult:
    features: ColumnDrift
    errors: ColumnDrift | None
    mae_bp_current: float
    mae_bp_reference: float | None
    should_retrain: bool
    reasons: list[str]
    skill: SkillCheck | None = None
    notes: list[str] = field(default_factory=list)  # what limits the verdict (not reasons)
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
        out |= {f"drift.feature_p.{k}": v for k, v in self.features.p_values.items()}
        if self.features.statistic is not None and self.features.threshold is not None:
            out["drift.features.statistic"] = self.features.statistic
            out["drift.features.threshold"] = self.features.threshold
        if self.skill is not None:
            out |= {
                "drift.skill.recent": self.skill.skill,
                "drift.skill.ci95_low": self.skill.ci95[0],
                "drift.skill.ci95_high": self.skill.ci95[1],
                "drift.skill.mae_recent": self.skill.mae_skill,
                "drift.skill.bar": self.skill.bar,
            }
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
            "skill": vars(self.skill) if self.skill else None,
            "notes": self.notes,
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
    return pd.DataFrame(
        {"error_bp": err, "abs_error_bp": np.abs(err), "persistence_error_bp": -actual * BP}
    )


def journal_errors(predictions: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Errors of journaled predictions whose realised price is known (trading's documents:
    ``base_price``, ``predicted_price`` and ``realised_price``), with persistence's error on
    the same forecasts (NaN where the base price is missing)."""
    from cryptoarena.model.skill import price_errors_bp

    docs = [p for p in predictions if p.get("predicted_price") and p.get("realised_price")]
    base = np.asarray([float(p.get("base_price") or np.nan) for p in docs], np.float64)
    pred = np.asarray([float(p["predicted_price"]) for p in docs], np.float64)
    real = np.asarray([float(p["realised_price"]) for p in docs], np.float64)
    err, pers = price_errors_bp(base, pred, real)
    return pd.DataFrame(
        {"error_bp": err, "abs_error_bp": np.abs(err), "persistence_error_bp": pers}
    )


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
    calibration: DriftCalibration | None = None,
) -> ColumnDrift:
    """Per-column distance on standardised values; optionally saves a bar chart (PNG).

    ``scaler`` (the champion's training scaler, over ``reference``'s columns) standardises both
    sides; without it the reference's own mean and std are used. Either way no column's distance
    depends on its scale. With ``calibration`` each column gets its in-span p-value, a column
    drifts at p < alpha, and the data set drifts when the calibrated statistic exceeds its
    in-span threshold; without it the fixed ``cfg.threshold``/``cfg.drift_share`` apply.
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
    if calibration is not None:
        known = [c for c in columns if c in calibration.null]
        p_values = {c: calibration.p_value(c, scores[c]) for c in known}
        drifted = sorted(c for c, p in p_values.items() if p < calibration.alpha)
        stat = calibration.statistic({c: scores[c] for c in known})
        return ColumnDrift(
            scores, drifted, len(drifted) / max(len(known), 1),
            bool(math.isfinite(stat) and stat > calibration.threshold),
            p_values, stat, calibration.threshold, True,
        )  # fmt: skip
    drifted = sorted(c for c, s in scores.items() if s >= cfg.threshold)
    share = len(drifted) / len(columns)
    return ColumnDrift(scores, drifted, share, share >= cfg.drift_share)


def calibrate(
    span_bars: pd.DataFrame,
    reference: pd.DataFrame,
    spec: FeatureSpec,
    cfg: DriftConfig | None = None,
    *,
    scaler: Scaler | None = None,
) -> DriftCalibration:
    """The in-span null: every ``cfg.window_s``-bar window of ``span_bars`` (the training span),
    ``cfg.stride_s`` apart, compared with ``reference`` exactly as a check compares recent bars.

    Raises when the span holds fewer than two windows.
    """
    cfg = cfg or DriftConfig()
    feats = compute_features(span_bars, spec)[spec.lookback :]
    starts = range(0, len(feats) - cfg.window_s + 1, cfg.stride_s)
    if len(starts) < 2:
        raise ValueError(
            f"{len(feats)} bars hold fewer than two {cfg.window_s} s windows to calibrate on"
        )
    columns = list(spec.names)
    dists: dict[str, list[float]] = {c: [] for c in columns}
    for start in starts:
        rows = feats[start : start + cfg.window_s]
        window = pd.DataFrame(rows[np.isfinite(rows).all(axis=1)], columns=columns)
        if len(window) < cfg.window_s // 2:  # a hole (book missing): not a normal window
            continue
        scores = column_drift(reference, window, cfg, scaler=scaler).scores
        for c in columns:
            dists[c].append(scores[c])
    null = {c: sorted(v) for c, v in dists.items()}
    scale = {c: float(np.median(v)) if v else float("nan") for c, v in null.items()}
    matrix = np.asarray([dists[c] for c in columns], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = matrix / np.asarray([scale[c] for c in columns])[:, None]
    ratios = np.nanmax(np.where(np.isfinite(rel), rel, np.nan), axis=0)
    threshold = float(np.quantile(ratios, 1 - cfg.alpha, method="higher"))
    logger.info(
        "drift calibrated on %d in-span windows of %d s: threshold %.3g", len(ratios),
        cfg.window_s, threshold,
    )  # fmt: skip
    return DriftCalibration(
        method=cfg.method, window_s=cfg.window_s, stride_s=cfg.stride_s, alpha=cfg.alpha,
        null=null, scale=scale, threshold=threshold,
    )  # fmt: skip


def skill_check(
    errors: pd.DataFrame, reference_skill: float | None, cfg: DriftConfig
) -> SkillCheck | None:
    """The retrain rule on recent errors (``error_bp`` and ``persistence_error_bp``); None when
    persistence's errors are unknown or too few for the interval."""
    from cryptoarena.model.cv import CVConfig, skill_interval

    if "persistence_error_bp" not in errors:
        return None
    both = errors[["error_bp", "persistence_error_bp"]].dropna()
    err = both["error_bp"].to_numpy(np.float64)
    base = both["persistence_error_bp"].to_numpy(np.float64)
    sk = forecast_skill(err, base)
    block = min(cfg.block_s, max(1, len(err) // 4))
    lo, hi = skill_interval(err**2, base**2, CVConfig(block_s=block, seed=7))
    if sk.mse_skill is None or not math.isfinite(hi):
        return None
    bar = min(0.0, reference_skill) if reference_skill is not None else 0.0
    return SkillCheck(
        n=sk.n, skill=sk.mse_skill, ci95=(lo, hi),
        mae_skill=float("nan") if sk.mae_skill is None else sk.mae_skill,
        reference_skill=reference_skill, bar=bar, degraded=hi < bar,
    )  # fmt: skip


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
    calibration: DriftCalibration | None = None,
) -> DriftResult:
    """Feature drift (current bars vs the training reference) and the skill-degradation test.

    Current errors come from ``current_errors`` (e.g. :func:`journal_errors`) or are computed by
    running the model on ``current_bars``. ``calibration`` is the model's in-span null (saved
    with it); without one the fixed thresholds apply and the result says the false-alarm rate is
    unknown. ``reference_bars`` adds the error-distribution comparison (information only).
    ``scaler`` is the model's training scaler (features are standardised with it).
    """
    cfg = cfg or DriftConfig()
    chart = (lambda name: out_dir / name) if out_dir is not None else (lambda name: None)
    current = feature_frame(current_bars, forecaster.spec, cfg.max_rows)
    features = column_drift(
        reference_features, current, cfg, chart("feature_drift.png"), scaler=scaler,
        calibration=calibration,
    )  # fmt: skip
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
        errors = column_drift(
            errors_ref[list(ERROR_COLUMNS)], errors_now[list(ERROR_COLUMNS)], cfg,
            chart("error_drift.png"),
        )  # fmt: skip
    notes: list[str] = []
    reasons = []
    if features.detected:
        how = (
            f"max distance / in-span median {features.statistic:.2f} > {features.threshold:.2f}, "
            f"the in-span {1 - (calibration.alpha if calibration else cfg.alpha):.0%} quantile"
            if features.calibrated
            else f"{cfg.method} >= {cfg.threshold}, uncalibrated"
        )
        reasons.append(
            f"feature drift: {len(features.drifted)}/{len(features.scores)} features ({how})"
        )
    if calibration is None:
        notes.append("no in-span calibration saved with this model: false-alarm rate unknown")
    elif abs(len(current) - calibration.window_s) > calibration.window_s // 2:
        notes.append(
            f"calibrated on {calibration.window_s} s windows; this check compares "
            f"{len(current)} rows"
        )
    skill = skill_check(errors_now, forecaster.info.metrics.get("skill"), cfg)
    if skill is None:
        notes.append("no skill test: persistence errors unknown or too few forecasts")
    elif skill.degraded:
        reasons.append(
            f"skill degraded: recent MSE skill {skill.skill:+.4f}, 95 % CI "
            f"[{skill.ci95[0]:+.4f}, {skill.ci95[1]:+.4f}] entirely below {skill.bar:+.4f}"
        )
    result = DriftResult(
        features, errors, mae_now, mae_ref, bool(reasons), reasons, skill=skill, notes=notes
    )
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
                    "drift.calibrated": str(result.features.calibrated),
                    "drift.notes": "; ".join(result.notes) or "none",
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
    from cryptoarena.model.registry import (
        download_calibration,
        download_reference,
        download_scaler,
        load_forecaster,
    )

    uri = f"models:/{model_name}@{alias}"
    forecaster = load_forecaster(uri, tracking_uri=tracking_uri)
    version_uri = f"models:/{model_name}/{forecaster.info.version}"
    ref_path = download_reference(version_uri, tracking_uri=tracking_uri, dst=out_dir / "reference")
    reference = pd.read_parquet(ref_path)
    scaler = download_scaler(version_uri, tracking_uri=tracking_uri)
    calibration = download_calibration(version_uri, tracking_uri=tracking_uri)
    result = check_drift(
        forecaster,
        reference,
        current_bars,
        reference_bars=reference_bars,
        current_errors=current_errors,
        cfg=cfg,
        out_dir=out_dir,
        scaler=scaler,
        calibration=calibration,
    )
    run_id = log_drift(
        result,
        tracking_uri=tracking_uri,
        experiment=get_settings().mlflow.experiment,
        model_name=model_name,
        version=forecaster.info.version,
    )
    return result, run_id
