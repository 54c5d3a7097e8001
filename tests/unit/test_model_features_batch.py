"""The vectorised feature pass that serving uses is the training pipeline, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptoarena.model.datasets import load_bars
from cryptoarena.model.features import (
    FeatureError,
    FeatureSpec,
    compute_features,
    last_window_features,
    min_bars,
)

SPEC = FeatureSpec()
WINDOW = 20


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    # 5,000 rows: enough that a whole-frame rolling sum and a window's are computed on
    # differently shaped arrays.
    return load_bars(max_bars=5000)


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy() for c in frame.columns}


def test_a_micro_batch_equals_the_whole_day_rows_bit_for_bit(bars: pd.DataFrame) -> None:
    full = compute_features(bars, SPEC)
    need = min_bars(SPEC, WINDOW)
    ends = np.random.default_rng(3).integers(need, len(bars) + 1, 16)
    frames = [bars.iloc[e - need - 5 : e] for e in ends]  # extra older bars are ignored
    batch = last_window_features(frames, SPEC, WINDOW)
    as_columns = last_window_features([_columns(f) for f in frames], SPEC, WINDOW)
    expected = np.stack([full[e - WINDOW : e] for e in ends]).astype(np.float32)
    np.testing.assert_array_equal(batch, expected)
    np.testing.assert_array_equal(as_columns, expected)
    one_by_one = np.concatenate([last_window_features([f], SPEC, WINDOW) for f in frames])
    np.testing.assert_array_equal(batch, one_by_one)


def test_other_specs_too(bars: pd.DataFrame) -> None:
    spec = FeatureSpec(
        return_lags=(1, 3), vol_windows=(5,), flow_windows=(2, 7), vwap_windows=(3,),
        activity_windows=(4, 9),
    )  # fmt: skip
    full = compute_features(bars, spec)
    need = min_bars(spec, 8)
    x = last_window_features([bars.iloc[1000 - need : 1000]], spec, 8)
    np.testing.assert_array_equal(x[0], full[992:1000].astype(np.float32))


def test_the_bad_window_of_a_batch_is_named(bars: pd.DataFrame) -> None:
    need = min_bars(SPEC, WINDOW)
    good = _columns(bars.iloc[:need])
    bad = {**good, "close": good["close"].copy()}
    bad["close"][-1] = 0.0
    with pytest.raises(FeatureError, match="window 2: bar closes must be finite and positive"):
        last_window_features([good, good, bad], SPEC, WINDOW)
    zero_low = {**good, "low": good["low"].copy()}
    zero_low["low"][-1] = 0.0  # high/low → inf
    with pytest.raises(FeatureError, match="window 1 gives non-finite features"):
        last_window_features([good, zero_low], SPEC, WINDOW)
    with pytest.raises(FeatureError, match="window 1 has 10 bars"):
        last_window_features([good, _columns(bars.iloc[:10])], SPEC, WINDOW)
    assert last_window_features([], SPEC, WINDOW).shape == (0, WINDOW, SPEC.n_features)
