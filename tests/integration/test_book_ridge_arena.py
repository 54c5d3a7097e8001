"""The order-book ridge as the AI arm (issue #20 item 2), end to end on a short slice of the
shipped Bitstamp 2015-05-01 day: fitted on its first half hour of book bars, tracked in MLflow,
its training span read back from the run's tags, forecasts precomputed per second from the
book, and an arena session on the replay with its recorded book (queue model ``l2``, takers
walking the book) trading only the bars after the training span."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cryptoarena.config import Settings
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.samples import BITSTAMP_DAY
from cryptoarena.model.features import BOOK_FEATURES, FeatureSpec
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.engine.session import (
    ExchangeKind,
    SessionOptions,
    Source,
    run_session,
)
from cryptoarena.trading.forecasts.choice import ForecastChoice, book_ridge_forecasts
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.results.source import build_report

pytestmark = pytest.mark.slow

BITSTAMP = Path(__file__).resolve().parents[2] / "data" / "sample" / BITSTAMP_DAY
TRAIN_MINUTES = 30.0
CONFIG = parse_arena_config(
    {
        "arena": {"queue_model": "l2"},
        "strategy": [
            {"name": "ai_taker", "kind": "ai_forecast",
             "params": {"execution": "taker", "threshold_bps": 0.1}},
            {"name": "sma_cross", "kind": "sma_cross",
             "params": {"fast": 5, "slow": 20, "bar_size": "1s"}},
            {"name": "hold", "kind": "buy_and_hold"},
        ],
    }
)  # fmt: skip


def _settings(tmp: Path) -> Settings:
    return Settings(
        mongo={"embedded_dir": tmp / "journal"},  # type: ignore[arg-type]
        mlflow={"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}"},  # type: ignore[arg-type]
        serving={"url": "http://127.0.0.1:9"},  # type: ignore[arg-type]
        trading={"kill_file": tmp / "arena.kill"},  # type: ignore[arg-type]
        home=tmp,
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, ForecastChoice]:
    if not BITSTAMP.exists():
        pytest.skip(f"the shipped Bitstamp day data/sample/{BITSTAMP_DAY} is missing")
    settings = _settings(tmp_path_factory.mktemp("bookridge"))
    return settings, book_ridge_forecasts(settings, BITSTAMP, TRAIN_MINUTES, window=256)


def test_the_book_ridge_is_fitted_before_its_held_out_span_and_tracked(
    fitted: tuple[Settings, ForecastChoice],
) -> None:
    choice = fitted[1]
    source, trained, held = choice.source, choice.trained, choice.held_out
    assert trained is not None and held is not None and trained.first_ns is not None
    # The one feature definition: the book spec's 23 features, the book's five among them.
    assert source.info.feature_names == FeatureSpec(book=True).names
    assert set(BOOK_FEATURES) <= set(source.info.feature_names)
    # Read back from the MLflow run: it saw the first half hour and nothing after it.
    assert trained.until_ns - trained.first_ns <= (TRAIN_MINUTES * 60 + 1) * NS_PER_S
    assert source.info.run_id and source.info.name == "book-ridge"
    first_held = np.datetime64(held["first"], "s").astype("datetime64[ns]").astype(np.int64)
    assert first_held >= trained.until_ns
    # Judged against persistence with an interval, on most of the day.
    assert held["n"] > 80_000 and held["skill_lo"] <= held["skill"] <= held["skill_hi"]
    assert 0.0 <= held["dm_p"] <= 1.0


async def test_a_short_slice_of_the_bitstamp_day_trades_the_book_ridge_out_of_sample(
    fitted: tuple[Settings, ForecastChoice],
) -> None:
    """Minutes 25–35 of the day: five minutes of warm-up inside the training span, then five
    minutes the model never saw. Only the latter are traded."""
    settings, choice = fitted
    assert choice.trained is not None
    options = SessionOptions(
        source=Source.REPLAY, exchange=ExchangeKind.PAPER, run_id="bookridge",
        replay_file=BITSTAMP, start_minute=TRAIN_MINUTES - 5, minutes=10, speed=None,
        forecast_source=choice.source,
    )  # fmt: skip
    await run_session(settings, CONFIG, options, handle_signals=False)
    with Journal.open(settings, run_id="bookridge") as journal:
        journal.sync(30)
        started = journal.find("runs", {"run_id": "bookridge", "event": "started"})[0]
        orders = journal.find("orders", {"run_id": "bookridge"})
        preds = journal.find("predictions", {"run_id": "bookridge"})
        report = build_report(journal, "bookridge")
    until = choice.trained.until_ns
    assert started["in_sample"] is False and started["trade_from_ns"] == until
    assert started["model_trained_from_ns"] == choice.trained.first_ns
    assert started["fills"]["queue_model"] == "l2"
    assert preds and {p["model_name"] for p in preds} == {"book-ridge"}
    ai = [o for o in orders if o["strategy"] == "ai_taker"]
    assert ai and all(o["ts_ns"] > until for o in orders)
    assert report.in_sample is False and report.verdict.ai == "ai_taker"
    assert any("queue model l2" in note for note in report.notes)
