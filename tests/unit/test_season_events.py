"""Which champion changes belong to a season (seasons.events.champion_events): those within its
UTC days; the last one before is the champion it started with; later ones are counted apart."""

from __future__ import annotations

from cryptoarena.model.champions import ChampionChange
from cryptoarena.trading.seasons.events import champion_events, halt_events, season_span_ms

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
DAY = 86_400_000


def _change(version: str, at_ms: int) -> ChampionChange:
    return ChampionChange("btcusdt-15s", version, at_ms, "gate", f"v{version} promoted")


def test_the_span_is_the_seasons_utc_days() -> None:
    assert season_span_ms(DAYS) == (START, START + 3 * DAY)
    assert season_span_ms([]) is None


def test_changes_inside_the_span_are_events_the_one_before_is_the_start() -> None:
    changes = [
        _change("3", START + DAY + 5),  # day two
        _change("1", START - 10 * DAY),
        _change("2", START - 1),  # the last millisecond before the season
        _change("4", START + 3 * DAY - 1),  # the last millisecond of day three
        _change("5", START + 3 * DAY),  # the next day: outside
    ]
    ev = champion_events(DAYS, changes)
    assert [(e.version, e.day) for e in ev.events] == [("3", "2024-01-02"), ("4", "2024-01-03")]
    assert ev.champion_at_start is not None and ev.champion_at_start.version == "2"
    assert ev.champions_outside == 1
    assert all(e.kind == "champion" and e.message == f"v{e.version} promoted" for e in ev.events)


def test_halts_global_halts_and_kills_are_halt_events_in_time_order() -> None:
    docs = [
        {"type": "kill", "reason": "kill file", "ts_ns": (START + 9_000) * 10**6},
        {"type": "halt", "strategy": "macd", "reason": "daily loss", "ts_ns": START * 10**6},
        {"type": "halt_released", "strategy": "macd", "ts_ns": (START + DAY) * 10**6},
        {"type": "global_halt", "reason": "drawdown", "ts_ns": (START + 5_000) * 10**6},
    ]
    out = halt_events("r1", docs)
    assert [(h.strategy, h.scope, h.at_ms - START) for h in out] == [
        ("macd", "strategy", 0),
        ("*", "global", 5_000),
        ("*", "kill", 9_000),
    ]
    assert {h.run_id for h in out} == {"r1"} and out[0].day == "2024-01-01"
