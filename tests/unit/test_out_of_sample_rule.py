"""The out-of-sample rule compares the replay's span with the span the model was trained and
validated on (issue #20 item 2): a replay wholly before it (the 2015 Bitstamp day under a model
of a 2020 Binance day) or wholly after it is out of sample and trades from its start; one that
overlaps it trades only after the validation end, or everything with --allow-in-sample (marked
in-sample). It used to count every replay that starts before the validation end as in-sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptoarena.data.records import NS_PER_S
from cryptoarena.trading.engine.session import (
    ForecastPlan,
    SessionError,
    SessionOptions,
    out_of_sample,
)
from cryptoarena.trading.forecasts.choice import ForecastChoice
from cryptoarena.trading.forecasts.local import TrainedSpan

H = 3600 * NS_PER_S
DAY = 24 * H
# A model trained and validated on one day's first 20 hours (from T0).
T0 = 1_582_329_600 * NS_PER_S  # 2020-02-22 00:00 UTC
TRAINED = TrainedSpan(first_ns=T0, until_ns=T0 + 20 * H)
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
PARQUET = SAMPLE / "binance_spot_btcusdt_trades_2021-01-08.parquet"  # 46 s of 2021-01-08


def _plan(trained: TrainedSpan | None = TRAINED) -> ForecastPlan:
    return ForecastPlan(source=object(), described="a model", trained=trained)


def test_a_replay_years_before_the_training_span_is_out_of_sample_without_the_flag() -> None:
    """The 2015 Bitstamp day under the 2020 model: it used to need --allow-in-sample."""
    span = (T0 - 5 * 365 * DAY, T0 - 5 * 365 * DAY + DAY - 1)
    trade_from, notes = out_of_sample(SessionOptions(), _plan(), span)
    assert trade_from == 0 and notes["in_sample"] is False
    assert notes["model_trained_from_ns"] == T0 and notes["model_valid_until_ns"] == T0 + 20 * H


def test_a_replay_after_the_validation_end_is_out_of_sample() -> None:
    span = (T0 + 20 * H, T0 + 22 * H)
    assert out_of_sample(SessionOptions(), _plan(), span) == (
        0,
        {"in_sample": False, "model_valid_until_ns": T0 + 20 * H, "model_trained_from_ns": T0},
    )


@pytest.mark.parametrize(
    "span",
    [(T0 + 19 * H, T0 + 22 * H), (T0 - H, T0 + 22 * H)],  # starts inside; covers it all
    ids=["starts-inside", "covers"],
)
def test_a_replay_that_overlaps_the_span_trades_only_after_the_validation_end(
    span: tuple[int, int],
) -> None:
    trade_from, notes = out_of_sample(SessionOptions(), _plan(), span)
    assert trade_from == T0 + 20 * H
    assert notes["in_sample"] is False and notes["trade_from_ns"] == T0 + 20 * H


def test_a_replay_that_ends_inside_the_span_is_refused_or_marked_in_sample() -> None:
    """Ends inside: from before the span's first bar, and from inside it."""
    for span in ((T0 - H, T0 + H), (T0 + H, T0 + 2 * H)):
        with pytest.raises(SessionError, match="before the model's validation end"):
            out_of_sample(SessionOptions(), _plan(), span)
        trade_from, notes = out_of_sample(SessionOptions(allow_in_sample=True), _plan(), span)
        assert trade_from == 0 and notes["in_sample"] is True


def test_an_unknown_training_start_counts_everything_before_the_end_as_seen() -> None:
    """A run that records no ``data.first``: the old (conservative) rule."""
    old = _plan(TrainedSpan(first_ns=None, until_ns=T0 + 20 * H))
    with pytest.raises(SessionError):
        out_of_sample(SessionOptions(), old, (T0 - 5 * 365 * DAY, T0 - 5 * 365 * DAY + H))


def test_the_default_start_minute_follows_the_same_rule(tmp_path: Path) -> None:
    """`arena backtest` without --start-minute: a replay the model never saw starts at its
    first minute; one it overlaps starts a warm-up before the validation end. The replay is
    46 s of 2021-01-08; the model's span is put before, after and around it."""
    from cryptoarena.trading.cli import _out_of_sample_start
    from cryptoarena.trading.forecasts.choice import WARMUP_MINUTES, replay_span

    if not PARQUET.exists():
        pytest.skip(f"the shipped sample {PARQUET.name} is missing from data/sample")
    config = tmp_path / "arena.toml"
    config.write_text('[[strategy]]\nname = "ai"\nkind = "ai_forecast"\n')
    from cryptoarena.config import get_settings

    first, last = replay_span(get_settings(), PARQUET)
    assert 0 < last - first < 60 * NS_PER_S  # the precondition: a short replay

    def start(trained: TrainedSpan) -> float:
        choice = ForecastChoice(object(), "a model", trained)
        return _out_of_sample_start(config, PARQUET, 5.0, None, False, None, choice)[0]

    year = 365 * DAY
    assert start(TrainedSpan(first + year, first + year + DAY)) == 0.0  # trained a year later
    assert start(TrainedSpan(first - year, first - year + DAY)) == 0.0  # a year before
    # Overlapping: the validation end 30 minutes in, so the replay starts a warm-up before it.
    minute = start(TrainedSpan(first - H, first + 30 * 60 * NS_PER_S))
    assert minute == pytest.approx(30.0 - WARMUP_MINUTES)


def test_the_cli_forecaster_choices_mirror_the_forecast_sources() -> None:
    from cryptoarena.trading.cli import ForecasterChoice
    from cryptoarena.trading.forecasts.choice import Forecaster

    assert [c.value for c in ForecasterChoice] == [f.value for f in Forecaster]


def test_the_report_says_a_replay_outside_the_span_is_out_of_sample_without_a_start() -> None:
    """A 2015 replay under a 2020 model used to read "scored from 2020-02-22 20:00 (after the
    model's validation end)", a time the replay never reaches."""
    from cryptoarena.trading.results.model import RunReport
    from cryptoarena.trading.results.render import sample_line

    def line(**fields: int | None) -> str | None:
        # Only the sample fields are read: the rest of a report is not needed here.
        return sample_line(RunReport.model_construct(run_id="r", in_sample=False, **fields))

    outside = line(model_valid_until_ns=T0 + 20 * H, trade_from_ns=None)
    assert outside is not None and "holds no bar the model trained or validated on" in outside
    assert "scored from" not in outside
    inside = line(model_valid_until_ns=T0 + 20 * H, trade_from_ns=T0 + 20 * H)
    assert (
        inside
        == "out of sample: scored from 2020-02-22 20:00:00 UTC (after the model's validation end)"
    )
