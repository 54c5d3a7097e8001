"""Purged, embargoed cross-validation: folds, holes in the data, pooled tests, oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptoarena.model.baselines import Ridge
from cryptoarena.model.cv import (
    CVConfig,
    contiguous_anchors,
    cross_validate,
    make_folds,
    skill_interval,
)
from cryptoarena.model.datasets import load_bars
from cryptoarena.model.features import FeatureSpec, Scaler, min_bars
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo
from cryptoarena.model.windows import split_gap, valid_anchors

SPEC = FeatureSpec()


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return load_bars(max_bars=12_000)


def _reads(anchors: np.ndarray, window: int, lookback: int) -> set[int]:
    """Bars the inputs of ``anchors`` read."""
    return {int(b) for a in anchors for b in range(a - window + 1 - lookback, a + 1)}


def _labels(anchors: np.ndarray, horizon: int) -> set[int]:
    return {int(b) for a in anchors for b in range(a, a + horizon + 1)}


@pytest.mark.parametrize("scheme", ["walk_forward", "blocked"])
@pytest.mark.parametrize(("window", "lookback", "horizon", "k"), [(20, 60, 15, 5), (5, 3, 2, 4)])
def test_no_fold_label_is_read_by_another_folds_training_inputs(
    scheme: str, window: int, lookback: int, horizon: int, k: int
) -> None:
    anchors = valid_anchors(3000, window=window, lookback=lookback, horizon=horizon)
    gap = split_gap(window=window, lookback=lookback, horizon=horizon)
    folds = make_folds(anchors, k=k, gap=gap, scheme=scheme)  # type: ignore[arg-type]
    assert len(folds) == (k - 1 if scheme == "walk_forward" else k)
    for fold in folds:
        test_labels = _labels(fold.test, horizon)
        train_inputs = _reads(fold.train, window, lookback)
        assert not test_labels & train_inputs
        assert not _labels(fold.train, horizon) & _reads(fold.test, window, lookback)
        if scheme == "walk_forward":
            assert fold.train.max() < fold.test.min()
    tests = np.concatenate([f.test for f in folds])
    assert len(np.unique(tests)) == len(tests)  # folds are disjoint and contiguous
    for f in folds:
        assert np.all(np.diff(f.test) == 1)


def test_anchors_never_straddle_a_hole_in_the_bars() -> None:
    ts = np.arange(1000, dtype=np.int64) * 1_000_000_000
    ts[500:] += 3600 * 1_000_000_000  # an hour missing: two spans, as the lake may hold
    a = contiguous_anchors(ts, window=10, lookback=5, horizon=3)
    full = valid_anchors(1000, window=10, lookback=5, horizon=3)
    assert len(a) == len(full) - (3 + 14)  # anchors whose reads cross index 499/500
    for anchor in a:
        span = ts[anchor - 14 : anchor + 4]
        assert np.all(np.diff(span) == 1_000_000_000)


def test_skill_interval_brackets_the_point_estimate() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=20_000) ** 2
    model = 0.9 * base + 0.05 * rng.normal(size=20_000) ** 2
    lo, hi = skill_interval(model, base, CVConfig())
    point = 1 - model.sum() / base.sum()
    assert lo < point < hi and hi - lo < 0.05


def test_cross_validate_on_real_bars(bars: pd.DataFrame) -> None:
    cv = cross_validate(bars, spec=SPEC, window=20, cfg=CVConfig(folds=4, n_boot=200))
    assert cv["scheme"] == "walk_forward" and len(cv["folds"]) == 3
    pooled = cv["pooled"]
    assert set(pooled) == {"persistence", "ewma_drift", "ridge"}
    assert pooled["persistence"]["skill"] == 0.0
    assert pooled["ridge"]["n"] == sum(f["n"] for f in cv["folds"])
    for name in ("ewma_drift", "ridge"):
        lo, hi = pooled[name]["skill_ci95"]
        assert lo <= pooled[name]["skill"] <= hi
        assert 0 <= pooled[name]["dm_p"] <= 1 and 0 <= pooled[name]["dm_hac_p"] <= 1
    assert pooled["ewma_drift"]["skill"] < 0 and pooled["ewma_drift"]["dm_p"] < 0.01
    assert {(r["a"], r["b"]) for r in cv["pairwise"]} == {("ewma_drift", "ridge")}


def test_a_fixed_model_is_scored_only_outside_its_training_span(bars: pd.DataFrame) -> None:
    from cryptoarena.model.baselines import Persistence

    info = ForecastModelInfo(
        name="p", version="1", run_id="", window=20, min_bars=min_bars(SPEC, 20)
    )
    model = Forecaster(info, SPEC, Persistence(15))
    ts = bars["ts"].to_numpy(np.int64)
    span = [(int(ts[0]), int(ts[8000]))]
    cv = cross_validate(
        bars, spec=SPEC, window=20, fixed={"fixed": model}, exclude={"fixed": span},
        cfg=CVConfig(folds=4, n_boot=200),
    )  # fmt: skip
    gap = cv["gap"]
    scored = sum(f["models"]["fixed"]["n"] for f in cv["folds"] if "fixed" in f["models"])
    assert scored == cv["pooled"]["fixed"]["n"] > 0
    last_test = max(f["n"] for f in cv["folds"])
    assert scored <= len(bars) - 8000 - gap and scored < 2 * last_test
    assert cv["pooled"]["fixed"]["skill"] == 0.0  # a persistence clone


def test_ridge_and_scaler_match_scikit_learn(bars: pd.DataFrame) -> None:
    """Oracles: StandardScaler for the scaler, sklearn Ridge (same α) for the ridge baseline."""
    from cryptoarena.model.features import compute_features, compute_targets
    from sklearn.linear_model import Ridge as SkRidge
    from sklearn.preprocessing import StandardScaler

    feats = compute_features(bars, SPEC)[SPEC.lookback : -SPEC.horizon]
    y = compute_targets(bars, SPEC.horizon)[SPEC.lookback : -SPEC.horizon]
    scaler = Scaler.fit(feats)
    sk_scaler = StandardScaler().fit(feats)
    np.testing.assert_allclose(scaler.mean, sk_scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(scaler.std, sk_scaler.scale_, rtol=1e-12)
    ours = Ridge(scaler, alpha=10.0).fit(feats, y)
    sk = SkRidge(alpha=10.0).fit(sk_scaler.transform(feats), y)
    np.testing.assert_allclose(ours.coef, sk.coef_.T, rtol=1e-7, atol=1e-14)
    pred = ours(feats[:, None, :])[:, 0, :]
    np.testing.assert_allclose(pred, sk.predict(sk_scaler.transform(feats)), rtol=1e-7, atol=1e-13)


def test_walk_forward_lstm_is_retrained_on_each_folds_past(bars: pd.DataFrame) -> None:
    import torch
    from cryptoarena.model.cv import default_fitters
    from cryptoarena.model.fit import lstm_fitter
    from cryptoarena.model.lstm import LSTMConfig

    torch.set_num_threads(1)
    cfg = LSTMConfig(window=20, hidden=4, max_epochs=1, batch_size=128, limit_train_batches=5)
    fitters = default_fitters(SPEC) | {"lstm_refit": lstm_fitter(cfg, SPEC)}
    cv = cross_validate(bars, spec=SPEC, window=20, fitters=fitters,
                        cfg=CVConfig(folds=3, n_boot=200))  # fmt: skip
    pooled = cv["pooled"]
    assert pooled["lstm_refit"]["n"] == pooled["ridge"]["n"] > 0  # every fold scored
    assert np.isfinite(pooled["lstm_refit"]["skill"])
    assert any(r["b"] == "lstm_refit" and r["a"] == "ridge" for r in cv["pairwise"])


def test_folds_by_day_are_whole_days() -> None:
    from cryptoarena.model.cv import make_folds
    from cryptoarena.model.windows import NS_PER_DAY, utc_day

    ts = (np.arange(3 * 8640, dtype=np.int64) * 10) * 1_000_000_000 + 19_000 * NS_PER_DAY
    anchors = np.arange(len(ts))
    folds = make_folds(anchors, k=6, gap=20, scheme="walk_forward", ts=ts)
    days = utc_day(ts)
    assert [len(set(days[f.test])) for f in folds] == [1] * len(folds)
    assert (
        sorted({int(days[f.test][0]) for f in folds}) == sorted(set(days.tolist()))[-len(folds) :]
    )
    for f in folds:
        assert not len(f.train) or f.train.max() <= f.test[0] - 20  # past only, with the gap
