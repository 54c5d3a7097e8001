"""Drift checks on the shipped real bars: code, data and behaviour (distances on standardised
features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.model.baselines import Persistence
from cryptoarena.model.datasets import load_bars
from cryptoarena.model.drift import (
    DriftConfig,
    check_drift,
    column_drift,
    feature_frame,
    forecast_errors,
    journal_errors,
)
from cryptoarena.model.features import BP, FeatureSpec, Scaler, compute_targets, min_bars
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo

WINDOW = 20


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return load_bars(max_bars=5400)  # 90 minutes of real BTCUSDT 1-second bars


def _persistence(mae_bp: float | None = None) -> Forecaster:
    spec = FeatureSpec()
    info = ForecastModelInfo(
        name="persistence",
        version="0",
        run_id="",
        window=WINDOW,
        min_bars=min_bars(spec, WINDOW),
        metrics={} if mae_bp is None else {"mae_bp": mae_bp},
    )
    return Forecaster(info, spec, Persistence(spec.horizon))


def test_no_drift_against_itself(bars: pd.DataFrame, tmp_path: Path) -> None:
    model = _persistence()
    reference = feature_frame(bars.iloc[:3600], model.spec)
    result = check_drift(
        model, reference, bars.iloc[:3600], reference_bars=bars.iloc[:3600], out_dir=tmp_path
    )
    assert result.features.share == 0 and not result.features.detected
    assert result.errors is not None and not result.errors.detected
    assert not result.should_retrain and result.reasons == []
    for name in ("feature_drift.png", "error_drift.png", "drift.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert "drift.features.share" in result.metrics()


def test_activity_shift_is_feature_drift(bars: pd.DataFrame) -> None:
    model = _persistence()
    reference = feature_frame(bars.iloc[:3600], model.spec)
    busier = bars.iloc[3600:].copy()
    for col in ("volume", "buy_volume", "sell_volume", "trades"):
        busier[col] = busier[col] * 50
    result = check_drift(model, reference, busier, cfg=DriftConfig(drift_share=0.2))
    assert {"log_volume_1", "log_volume_15", "log_trades_15"} <= set(result.features.drifted)
    assert "ret_1" not in result.features.drifted  # prices untouched
    assert result.should_retrain and "feature drift" in result.reasons[0]


class _Biased:
    """Persistence plus a constant forecast of ``bp`` basis points: worse than persistence."""

    def __init__(self, horizon: int, bp: float) -> None:
        self.horizon, self.bp = horizon, bp

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.full((len(x), 1, self.horizon), self.bp / BP)


def test_skill_degradation_triggers_retrain(bars: pd.DataFrame) -> None:
    spec = FeatureSpec()
    info = ForecastModelInfo(
        name="biased", version="0", run_id="", window=WINDOW, min_bars=min_bars(spec, WINDOW),
        metrics={"skill": 0.01},
    )  # fmt: skip
    model = Forecaster(info, spec, _Biased(spec.horizon, 5.0))
    reference = feature_frame(bars.iloc[:3600], model.spec)
    result = check_drift(model, reference, bars.iloc[:3600])
    assert result.skill is not None and result.skill.degraded
    assert result.skill.ci95[1] < 0 and result.skill.bar == 0.0
    assert result.should_retrain and any("skill degraded" in r for r in result.reasons)
    # Persistence itself has skill 0: its interval is degenerate at 0, never "below" the bar.
    same = check_drift(_persistence(), reference, bars.iloc[:3600])
    assert not same.should_retrain, same.reasons


def test_forecast_errors_of_persistence_are_the_moves(bars: pd.DataFrame) -> None:
    model = _persistence()
    errors = forecast_errors(model, bars.iloc[:1000], max_rows=10_000)
    first = model.info.min_bars - 1
    actual = compute_targets(bars.iloc[:1000], 15)[first : 1000 - 16 + 1, -1]
    assert len(errors) == len(actual)
    np.testing.assert_allclose(errors["abs_error_bp"], np.abs(actual) * BP)
    with pytest.raises(ValueError, match="too few"):
        forecast_errors(model, bars.iloc[:50])


def test_journal_errors_and_config_validation() -> None:
    docs = [
        {"predicted_price": 100.0, "realised_price": 100.0},
        {"predicted_price": 101.0, "realised_price": 100.0},
        {"predicted_price": 101.0, "realised_price": None},  # not due yet
    ]
    errors = journal_errors(docs)
    assert len(errors) == 2
    assert errors["error_bp"].iloc[0] == 0
    assert errors["error_bp"].iloc[1] == pytest.approx(np.log(1.01) * BP)
    with pytest.raises(ValueError, match="method"):
        DriftConfig(method="ks")


def test_small_variance_return_shift_is_detected(bars: pd.DataFrame) -> None:
    """A shift of half a training std in ret_1 (std ~1e-4) is drift. Fails on the Evidently-based
    check, whose normed Wasserstein divides by max(std, 0.001) and scored it ~0.05 (< 0.1)."""
    spec = FeatureSpec()
    reference = feature_frame(bars.iloc[:3600], spec)
    std = float(reference["ret_1"].std())
    assert 1e-5 < std < 1e-3  # a real small-variance return feature
    current = reference.copy()
    current["ret_1"] += 0.5 * std
    result = column_drift(reference, current, DriftConfig())
    assert result.drifted == ["ret_1"]
    assert result.scores["ret_1"] == pytest.approx(0.5, rel=0.02)
    # The champion's saved scaler standardises the same way (and is what the flow passes).
    scaler = Scaler.fit(reference.to_numpy())
    with_scaler = column_drift(reference, current, DriftConfig(), scaler=scaler)
    assert with_scaler.drifted == ["ret_1"]
    assert with_scaler.scores["ret_1"] == pytest.approx(0.5, rel=0.02)
    untouched = column_drift(reference, reference, DriftConfig(), scaler=scaler)
    assert untouched.drifted == [] and max(untouched.scores.values()) == 0


def test_psi_is_scale_free_and_flags_the_same_shift(bars: pd.DataFrame) -> None:
    reference = feature_frame(bars.iloc[:3600], FeatureSpec())
    current = reference.copy()
    current["ret_15"] += 1.0 * float(reference["ret_15"].std())
    result = column_drift(reference, current, DriftConfig(method="psi"))
    assert "ret_15" in result.drifted and "ret_1" not in result.drifted


@pytest.fixture(scope="module")
def day_calibration():  # type: ignore[no-untyped-def]
    """The shipped day prepared as training prepares it, and its in-span drift calibration."""
    from cryptoarena.model.drift import calibrate
    from cryptoarena.model.fit import prepare

    prepared = prepare(load_bars(), FeatureSpec(), WINDOW)
    assert len(prepared.bars) > 80_000, "the shipped day (data/sample) is not a full day"
    span = prepared.train_span_bars()
    calibration = calibrate(
        span, prepared.reference_sample(), prepared.spec, scaler=prepared.scaler
    )
    return prepared, span, calibration


def test_in_span_windows_raise_at_most_five_percent_false_alarms(day_calibration) -> None:  # type: ignore[no-untyped-def]
    """Issue #20: on 33 half-hour windows inside the training span the fixed 0.1 threshold called
    the data drifted 79 % of the time. Calibrated, the rate is stated (alpha) and held: here on
    half-hour windows offset from the calibration's own (so not the windows it was fitted on)."""
    prepared, span, calibration = day_calibration
    spec, cfg = prepared.spec, DriftConfig()
    assert calibration.alpha == 0.05 and calibration.n_windows > 100
    starts = range(cfg.stride_s // 2, len(span) - cfg.window_s - spec.lookback, cfg.window_s)
    results = [
        column_drift(
            prepared.reference_sample(),
            feature_frame(span.iloc[s : s + cfg.window_s + spec.lookback], spec),
            cfg,
            scaler=prepared.scaler,
            calibration=calibration,
        )
        for s in starts
    ]
    assert len(results) >= 30
    assert all(r.calibrated and set(r.p_values) == set(spec.names) for r in results)
    alarms = sum(r.detected for r in results)
    assert alarms / len(results) <= 0.05, f"{alarms}/{len(results)} in-span windows flagged"
    assert np.median([len(r.drifted) for r in results]) <= 1  # per-feature p < 0.05
    # The calibrated check still sees a real change: the same window, 50 × busier.
    busier = span.iloc[: cfg.window_s + spec.lookback].copy()
    for col in ("volume", "buy_volume", "sell_volume", "trades"):
        busier[col] = busier[col] * 50
    shifted = column_drift(
        prepared.reference_sample(), feature_frame(busier, spec), cfg,
        scaler=prepared.scaler, calibration=calibration,
    )  # fmt: skip
    assert shifted.detected and "log_volume_15" in shifted.drifted
    assert shifted.p_values["log_volume_15"] < 0.05
