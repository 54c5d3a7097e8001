"""Order-book data and features: loaders on the recorded feeds, features equal live and offline,
and the claim they support (book features beat trades-only on the Bitstamp day)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.samples import BITSTAMP_DAY, sample_path
from cryptoarena.model.book import BOOK_COLUMNS, has_book, load_book_bars
from cryptoarena.model.features import (
    BOOK_FEATURES,
    FeatureError,
    FeatureSpec,
    compute_features,
    last_window_features,
    min_bars,
)

SPEC = FeatureSpec(book=True)
FEED = "binance_spot_btcusdt_feed_20240808.gz"


@pytest.fixture(scope="module")
def bitstamp() -> pd.DataFrame:
    return load_book_bars(sample_path(BITSTAMP_DAY))


@pytest.fixture(scope="module")
def feed() -> pd.DataFrame:
    return load_book_bars(sample_path(FEED))


def test_bitstamp_book_bars(bitstamp: pd.DataFrame) -> None:
    assert len(bitstamp) == 86_395 and has_book(bitstamp)
    book = bitstamp[list(BOOK_COLUMNS)].to_numpy()
    assert np.isfinite(book).all()
    assert (bitstamp["bid"] < bitstamp["ask"]).all()
    assert (bitstamp["bid_sz5"] >= bitstamp["bid_sz1"]).all()
    np.testing.assert_allclose(bitstamp["close"], (bitstamp["bid"] + bitstamp["ask"]) / 2)


def test_binance_feed_book_bars(feed: pd.DataFrame) -> None:
    assert 300 < len(feed) < 700 and has_book(feed)
    quoted = np.isfinite(feed["bid"].to_numpy())
    assert quoted.mean() > 0.95
    q = feed[quoted]
    assert (q["bid"] < q["ask"]).all() and (q["bid_sz1"] > 0).all()
    np.testing.assert_allclose(q["close"], (q["bid"] + q["ask"]) / 2)
    deep = np.isfinite(q["bid_sz5"].to_numpy())
    assert deep.mean() > 0.9 and (q["bid_sz5"][deep] >= q["bid_sz1"][deep] - 1e-12).all()


def test_book_feature_values() -> None:
    n = 80
    bars = pd.DataFrame(
        {
            "close": np.full(n, 100.0), "high": 100.0, "low": 100.0, "volume": 1.0,
            "vwap": 100.0, "trades": 1.0, "buy_volume": 0.5, "sell_volume": 0.5,
            "bid": 99.0, "ask": 101.0, "bid_sz1": 3.0, "ask_sz1": 1.0,
            "bid_sz5": np.linspace(10, 20, n), "ask_sz5": 10.0,
        }
    )  # fmt: skip
    f = compute_features(bars, SPEC)[-1, -len(BOOK_FEATURES) :]
    micro = (99 * 1 + 101 * 3) / 4
    expected = [0.5, (20 - 10) / 30, np.log(micro / 100), np.log(101 / 99),
                np.log(20 / np.linspace(10, 20, n)[-16])]  # fmt: skip
    np.testing.assert_allclose(f, expected, rtol=1e-12)
    with pytest.raises(FeatureError, match="bid"):
        compute_features(bars.drop(columns=["bid"]), SPEC)


def test_book_features_are_identical_live_and_offline(bitstamp: pd.DataFrame) -> None:
    """The serving path (short windows, batched) equals the training path (the whole day)."""
    window = 30
    need = min_bars(SPEC, window)
    day = compute_features(bitstamp, SPEC)
    ends = [need, 5_000, 40_321, len(bitstamp)]
    live = last_window_features([bitstamp.iloc[e - need : e] for e in ends], SPEC, window)
    for i, e in enumerate(ends):
        np.testing.assert_array_equal(live[i], day[e - window : e].astype(np.float32))


def test_book_features_beat_trades_only_on_the_bitstamp_day(bitstamp: pd.DataFrame) -> None:
    """The target of issue 13: pooled walk-forward DM test of ridge with book features against
    ridge on the same day's trade features only, same folds."""
    from cryptoarena.model.cv import CVConfig, cross_validate, persistence_fitter, ridge_fitter

    trades_only = [i for i, name in enumerate(SPEC.names) if name not in BOOK_FEATURES]
    fitters = {
        "persistence": persistence_fitter(15),
        "ridge_trades": ridge_fitter(columns=trades_only),
        "ridge_book": ridge_fitter(),
    }
    cv = cross_validate(bitstamp, spec=SPEC, window=60, fitters=fitters,
                        cfg=CVConfig(n_boot=200))  # fmt: skip
    pooled = cv["pooled"]
    assert pooled["ridge_book"]["skill"] > pooled["ridge_trades"]["skill"] > 0
    (pair,) = cv["pairwise"]
    assert (pair["a"], pair["b"]) == ("ridge_trades", "ridge_book")
    assert pair["dm_stat"] > 0 and pair["dm_p"] < 0.05  # trades-only has the higher loss
