"""The order-book ridge as the AI arm (issue #20 item 2), end to end on the shipped Bitstamp
2015-05-01 day: fitted on its first minutes of book bars, tracked in MLflow, its training span
read back from the run's tags, forecasts precomputed per second from the book, and
`arena backtest --forecaster book-ridge` on a short slice of the replay with its recorded book
(queue model ``l2``, takers walking the book) trading only the bars after the training span."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cryptoarena.config import Settings
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.samples import BITSTAMP_DAY
from cryptoarena.model.features import BOOK_FEATURES, FeatureSpec
from cryptoarena.trading.forecasts.choice import ForecastChoice, book_ridge_forecasts
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.results.source import build_report

pytestmark = pytest.mark.slow

BITSTAMP = Path(__file__).resolve().parents[2] / "data" / "sample" / BITSTAMP_DAY
TRAIN_MINUTES = 30.0


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


def test_a_short_slice_of_the_bitstamp_day_trades_the_book_ridge_out_of_sample(
    tmp_path: Path,
) -> None:
    """`arena backtest --forecaster book-ridge` as the docs run it, on a short slice: fitted on
    the day's first 15 minutes, the replay starts at the day's start (the default: a warm-up
    before the training span's end, here all of it) and trades 5 minutes the model never saw,
    under queue model l2 with takers walking the book."""
    from cryptoarena.cli import app
    from typer.testing import CliRunner

    if not BITSTAMP.exists():
        pytest.skip(f"the shipped Bitstamp day data/sample/{BITSTAMP_DAY} is missing")
    config = tmp_path / "arena.toml"
    config.write_text(
        '[arena]\nqueue_model = "l2"\n'
        '[[strategy]]\nname = "ai_taker"\nkind = "ai_forecast"\n'
        'params = { execution = "taker", threshold_bps = 0.1 }\n'
        '[[strategy]]\nname = "sma_cross"\nkind = "sma_cross"\n'
        'params = { fast = 5, slow = 20, bar_size = "1s" }\n'
        '[[strategy]]\nname = "hold"\nkind = "buy_and_hold"\n'
    )
    settings = _settings(tmp_path)
    env = {
        "ARENA_MONGO__EMBEDDED_DIR": str(settings.mongo.embedded_dir),
        "ARENA_MLFLOW__TRACKING_URI": settings.mlflow.tracking_uri,
        "ARENA_SERVING__URL": settings.serving.url,
        "ARENA_TRADING__KILL_FILE": str(settings.trading.kill_file),
        "ARENA_LOG_FILE": str(tmp_path / "arena.log"),
    }
    args = ["backtest", "-c", str(config), "--forecaster", "book-ridge", "--train-minutes", "15",
            "--minutes", "5", "--replay-file", str(BITSTAMP), "--run-id", "bookridge"]  # fmt: skip
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "MSE skill vs persistence" in result.output  # the held-out line, before the run
    with Journal.open(settings, run_id="bookridge") as journal:
        started = journal.find("runs", {"run_id": "bookridge", "event": "started"})[0]
        orders = journal.find("orders", {"run_id": "bookridge"})
        preds = journal.find("predictions", {"run_id": "bookridge"})
        report = build_report(journal, "bookridge")
    until = started["model_valid_until_ns"]
    assert started["in_sample"] is False and started["trade_from_ns"] == until
    assert until - started["model_trained_from_ns"] <= (15 * 60 + 16) * NS_PER_S
    assert started["fills"]["queue_model"] == "l2"
    assert preds and {p["model_name"] for p in preds} == {"book-ridge"}
    ai = [o for o in orders if o["strategy"] == "ai_taker"]
    assert ai and all(o["ts_ns"] > until for o in orders)
    assert report.in_sample is False and report.verdict.ai == "ai_taker"
    assert any("queue model l2" in note for note in report.notes)
