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


def test_bitstamp_loader_counts_malformed_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import bz2

    from cryptoarena.model.bitstamp import load_bitstamp_bars

    book = '{"bids": [["%s", "1"]], "asks": [["%s", "1"]]}'
    lines = [
        "1430438400100 order_book " + book % ("230.00", "230.20"),
        "1430438401500 trade " + '{"price": 230.1, "amount": 2.0, "id": 1}',
        "1430438401900 order_book {not json",
        "1430438403200 order_book " + book % ("230.40", "230.60"),
        "1430438403300 order_created " + '{"price": "1", "amount": "1"}',
    ]
    path = tmp_path / "day.log.bz2"
    path.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    bars, report = load_bitstamp_bars(path)
    assert report.malformed == 1 and "line 3" in report.examples[0]
    assert bars["close"].tolist() == pytest.approx([230.1, 230.1, 230.1, 230.5])  # forward-filled
    assert bars["volume"].tolist() == [0.0, 2.0, 0.0, 0.0]
    assert bars["vwap"].iloc[1] == pytest.approx(230.1)
    empty = tmp_path / "empty.log.bz2"
    empty.write_bytes(bz2.compress(b"1 trade {}\n"))
    with pytest.raises(ValueError, match="no order_book"):
        load_bitstamp_bars(empty)
