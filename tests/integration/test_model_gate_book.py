"""A champion that forecasts from order-book features meets a candidate trained on bars without
a book (the nightly retrain on a lake with orderbook.50 crowned a book model, then `arena train`
on a trade file): the gate refuses in words, and ``--promote force`` still crowns (issue #23:
both commands ended in a FeatureError traceback)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cryptoarena.model.book import has_book, load_book_bars
from cryptoarena.model.registry import CHAMPION, get_alias_version
from cryptoarena.model.train import TINY_CONFIG, train

NAME = "btcusdt-15s"
BOOK_LOG = Path(__file__).parents[2] / "data" / "sample" / "bitstamp_BTCUSD_2015-05-01.log.bz2"


@pytest.fixture(scope="module")
def book_bars() -> pd.DataFrame:
    if not BOOK_LOG.exists():
        pytest.skip(f"the shipped Bitstamp day is missing: {BOOK_LOG}")
    bars = load_book_bars(BOOK_LOG).iloc[:7200].reset_index(drop=True)
    assert has_book(bars)
    return bars


def test_a_book_champion_is_not_compared_with_a_candidate_without_a_book(
    mlflow_store: str, day_bars: pd.DataFrame, book_bars: pd.DataFrame
) -> None:
    assert not has_book(day_bars)
    book = train(book_bars, tracking_uri=mlflow_store, name=NAME, cfg=TINY_CONFIG, promote="force")
    assert book.promoted and book.forecaster.spec.book

    gated = train(day_bars, tracking_uri=mlflow_store, name=NAME, cfg=TINY_CONFIG, promote="gate")
    assert not gated.promoted
    assert gated.decision.reason.startswith(f"refused: champion v{book.info.version} forecasts")
    assert "order-book features" in gated.decision.reason
    assert get_alias_version(NAME, CHAMPION, tracking_uri=mlflow_store) == book.info.version

    forced = train(day_bars, tracking_uri=mlflow_store, name=NAME, cfg=TINY_CONFIG, promote="force")
    assert forced.promoted
    assert get_alias_version(NAME, CHAMPION, tracking_uri=mlflow_store) == forced.info.version
