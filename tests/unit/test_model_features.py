"""Code tests of the feature pipeline (Made-With-ML layer 1), on real shipped bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptoarena.model.datasets import load_bars
from cryptoarena.model.features import (
    FeatureError,
    FeatureSpec,
    Scaler,
    compute_features,
    compute_targets,
    last_window_features,
    min_bars,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SPEC = FeatureSpec()


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return load_bars(max_bars=3000)


def _scaled(bars: pd.DataFrame, k: float) -> pd.DataFrame:
    out = bars.copy()
    for col in ("open", "high", "low", "close", "vwap"):
        out[col] = out[col] * k
    return out


def test_shape_names_and_warm_up(bars: pd.DataFrame) -> None:
    f = compute_features(bars, SPEC)
    assert f.shape == (len(bars), SPEC.n_features) == (len(bars), len(SPEC.names))
    assert np.isnan(f[: SPEC.lookback]).all()
    assert np.isfinite(f[SPEC.lookback :]).all()


def test_known_values_on_a_hand_made_frame() -> None:
    n = 80
    close = 100.0 * np.exp(np.arange(n) * 1e-4)  # +1 bp every second
    bars = pd.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 10**9,
            "open": close,
            "high": close * 1.0002,
            "low": close,
            "close": close,
            "volume": np.full(n, 2.0),
            "vwap": close,
            "trades": np.full(n, 3, dtype=np.int64),
            "buy_volume": np.full(n, 1.5),
            "sell_volume": np.full(n, 0.5),
        }
    )
    f = compute_features(bars, SPEC)[-1]
    col = dict(zip(SPEC.names, f, strict=True))
    assert col["ret_1"] == pytest.approx(1e-4)
    assert col["ret_15"] == pytest.approx(15e-4)
    assert col["rvol_15"] == pytest.approx(np.sqrt(15) * 1e-4)
    assert col["ofi_1"] == pytest.approx(0.5) and col["ofi_60"] == pytest.approx(0.5)
    assert col["vwap_dist_1"] == pytest.approx(0.0, abs=1e-15)
    assert col["vwap_dist_60"] > 0  # price rose: the last close is above the 60 s VWAP
    assert col["log_volume_15"] == pytest.approx(np.log1p(30.0))
    assert col["log_trades_1"] == pytest.approx(np.log1p(3.0))
    assert col["range_1"] == pytest.approx(np.log(1.0002))


def test_targets_are_future_log_returns(bars: pd.DataFrame) -> None:
    y = compute_targets(bars, 15)
    c = bars["close"].to_numpy()
    assert y[100, 14] == pytest.approx(np.log(c[115] / c[100]))
    assert y[100, 0] == pytest.approx(np.log(c[101] / c[100]))
    assert np.isnan(y[-1]).all() and np.isfinite(y[:-15]).all()


def test_invariant_to_price_level(bars: pd.DataFrame) -> None:
    f = compute_features(bars, SPEC)
    # A power of two scales every float exactly: features are bit-identical.
    np.testing.assert_array_equal(compute_features(_scaled(bars, 2.0), SPEC), f)
    np.testing.assert_allclose(
        compute_features(_scaled(bars, 1.37), SPEC), f, rtol=1e-9, atol=1e-12
    )


def test_short_window_equals_full_frame(bars: pd.DataFrame) -> None:
    """Serving computes features on min_bars rows; training on the whole day: same numbers."""
    full = compute_features(bars, SPEC)
    need = min_bars(SPEC, 60)
    for end in (need, 1000, len(bars)):
        x = last_window_features([bars.iloc[end - need : end]], SPEC, 60)[0]
        np.testing.assert_array_equal(x, full[end - 60 : end].astype(np.float32))


def test_bad_input_is_refused(bars: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="lack columns"):
        compute_features(bars.drop(columns=["vwap"]), SPEC)
    broken = bars.copy()
    broken.loc[10, "close"] = 0.0
    with pytest.raises(FeatureError, match="positive"):
        compute_features(broken, SPEC)
    with pytest.raises(FeatureError, match="at least"):
        last_window_features([bars.iloc[:50]], SPEC, 60)
    with pytest.raises(ValueError):
        FeatureSpec(return_lags=(0, 1))


def test_scaler_standardises_and_round_trips(bars: pd.DataFrame) -> None:
    f = compute_features(bars, SPEC)[SPEC.lookback :]
    scaler = Scaler.fit(f)
    z = scaler.transform(f)
    assert np.allclose(z.mean(axis=0), 0, atol=1e-9)
    assert Scaler.model_validate_json(scaler.model_dump_json()) == scaler
    with pytest.raises(FeatureError):
        Scaler.fit(compute_features(bars, SPEC))  # warm-up NaNs must be dropped first


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.001, 5.0), min_size=70, max_size=120),
    st.sampled_from([0.5, 2.0, 4.0, 1024.0]),
)
def test_property_invariance_on_generated_paths(steps: list[float], k: float) -> None:
    close = np.cumsum(steps) + 100.0
    n = len(close)
    bars = pd.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 10**9,
            "open": close,
            "high": close + 0.5,
            "low": close - 0.05,
            "close": close,
            "volume": np.array(steps),
            "vwap": close - 0.01,
            "trades": np.ones(n, dtype=np.int64),
            "buy_volume": np.array(steps) / 2,
            "sell_volume": np.array(steps) / 3,
        }
    )
    f = compute_features(bars, SPEC)
    np.testing.assert_array_equal(compute_features(_scaled(bars, k), SPEC), f)
    assert np.isfinite(f[SPEC.lookback :]).all()
