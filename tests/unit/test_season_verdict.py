"""The season verdict from per-day paired differences, and its power in words."""

from __future__ import annotations

import numpy as np
import pytest
from cryptoarena.trading.seasons.verdict import days_for_power, season_verdict

FAMILIES = {"ai_taker": "ai", "ai_maker": "ai", "sma": "classical", "rsi": "classical"}


def _season(days: int, edge: float, seed: int = 3) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {
        "ai_taker": list(rng.normal(edge, 20.0, days)),
        "ai_maker": list(rng.normal(0.0, 20.0, days)),
        "sma": list(rng.normal(0.0, 20.0, days)),
        "rsi": list(rng.normal(0.0, 20.0, days)),
    }


def test_a_clear_edge_over_days_is_seen_and_the_pick_is_adjusted() -> None:
    r = _season(40, 60.0)
    v = season_verdict(
        r, FAMILIES, {"ai_taker": 5.0, "ai_maker": -1.0}, {"ai_taker": 9, "ai_maker": 3}
    )
    assert v.days == 40 and v.headline is not None and v.headline.ai == "ai_taker"
    assert v.sentence.startswith("Over 40 UTC days, AI arm ai_taker (best of 2 AI arms")
    assert "97.5 % CI" in v.sentence and "excludes zero" in v.sentence
    # The per-day differences are AI minus the mean of the classical strategies, day by day.
    mean_classical = (np.array(r["sma"]) + np.array(r["rsi"])) / 2
    np.testing.assert_allclose(v.headline.per_day, np.array(r["ai_taker"]) - mean_classical)
    own = next(c for c in v.comparisons if c.ai == "ai_taker" and c.versus == "classical mean")
    assert own.ci is not None and v.headline.ci is not None
    assert v.headline.ci[0] < own.ci[0] < own.ci[1] < v.headline.ci[1]  # widened for the pick
    assert {(c.ai, c.versus) for c in v.comparisons} >= {("ai_maker", "sma"), ("ai_taker", "rsi")}


def test_noise_is_not_significant_and_the_power_says_how_many_more_days() -> None:
    r = _season(5, 0.0)
    v = season_verdict(r, FAMILIES, {"ai_taker": 1.0}, {"ai_taker": 4})
    assert v.sentence.startswith("Not significant yet over 5 UTC days")
    assert v.power.startswith("Power: about ") and "more days to detect a difference of" in v.power
    assert "bp/day with 80 % power" in v.power
    h = v.headline
    assert h is not None and h.days_needed is not None and h.detect_bp_day is not None
    assert f"about {h.days_needed - 5:,} more days" in v.power
    # More spread needs more days; a bigger difference fewer.
    assert days_for_power(40.0, 10.0) > days_for_power(20.0, 10.0) > days_for_power(20.0, 20.0)
    # The textbook figure: d = 0.5 standard deviations needs about 32 paired observations.
    assert days_for_power(2.0, 1.0) == pytest.approx(32, abs=1)


def test_one_day_has_no_day_to_day_interval_and_says_so() -> None:
    v = season_verdict(_season(1, 0.0), FAMILIES, {}, {})
    assert v.sentence.startswith("No season verdict yet: 1 day(s)")
    assert v.power.startswith("Power: unknown until the season has two days")
