"""Data tests (Made-With-ML layer 2) on the real bars the model learns from and is judged on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.records import BAR_COLUMNS, NS_PER_S
from cryptoarena.model.datasets import load_bars, second_venue_bars
from cryptoarena.model.features import FeatureSpec, compute_features, compute_targets


@pytest.fixture(scope="module")
def binance() -> pd.DataFrame:
    return load_bars()


@pytest.fixture(scope="module")
def bitstamp() -> pd.DataFrame:
    return second_venue_bars()


def _check_bars(bars: pd.DataFrame, n: int, lo: float, hi: float) -> None:
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert bars["ts"].dtype == np.int64 and bars["trades"].dtype == np.int64
    assert len(bars) == n
    steps = np.diff(bars["ts"].to_numpy())
    assert np.all(steps == NS_PER_S)  # ordered, one bar per second, empty seconds explicit
    assert bars["ts"].iloc[0] % NS_PER_S == 0
    num = bars.drop(columns=["ts"]).to_numpy(np.float64)
    assert np.isfinite(num).all()
    assert bars["close"].between(lo, hi).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1) - 1e-9).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1) + 1e-9).all()
    assert (bars[["volume", "buy_volume", "sell_volume"]] >= 0).all().all()
    assert (bars["buy_volume"] + bars["sell_volume"] <= bars["volume"] * (1 + 1e-9) + 1e-12).all()


def _longest_run(flags: np.ndarray) -> int:
    """Longest stretch of consecutive True values."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max()) if len(starts) else 0


def test_binance_day_schema_order_and_ranges(binance: pd.DataFrame) -> None:
    _check_bars(binance, 86_392, 9_500.0, 9_800.0)  # README: 9,565.0 to 9,710.7
    assert int(binance["trades"].sum()) == 137_988
    assert 0.3 < (binance["trades"] > 0).mean() < 0.5  # ~41% of seconds trade
    # No gap beyond tolerance: the longest stretch without a trade is 36.8 s.
    assert _longest_run(binance["volume"].to_numpy() == 0) < 60


def test_bitstamp_day_schema_order_and_ranges(bitstamp: pd.DataFrame) -> None:
    _check_bars(bitstamp, 86_395, 225.0, 245.0)  # README: mid 230.74 to 239.19
    # Snapshots every ~2 s (max 57 s): the mid never stays stale longer than a few minutes.
    assert _longest_run(np.diff(bitstamp["close"].to_numpy()) == 0) < 3600
    assert (bitstamp["buy_volume"] == 0).all()  # the 2015 trade feed has no taker side


@pytest.mark.parametrize("venue", ["binance", "bitstamp"])
def test_labels_and_features_in_sane_ranges(venue: str, request: pytest.FixtureRequest) -> None:
    bars = request.getfixturevalue(venue)
    spec = FeatureSpec()
    y = compute_targets(bars, 15)[:-15]
    assert np.isfinite(y).all()
    assert np.abs(y).max() < 0.02  # no 2% move in 15 s on either day
    assert 0.1 < np.median(np.abs(y[:, -1])) * 1e4 < 2.0 or np.mean(y[:, -1] == 0) > 0.4
    f = compute_features(bars, spec)[spec.lookback :]
    assert np.isfinite(f).all()
    ofi = f[:, [spec.names.index(f"ofi_{w}") for w in spec.flow_windows]]
    assert (np.abs(ofi) <= 1 + 1e-12).all()
