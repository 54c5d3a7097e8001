"""A season whose UTC days end with today, journaled by hand (two classical strategies, a halt
each day), for tests of its events: MLflow's crown() stamps wall-clock time, so a champion
crowned by a test falls inside this season's span, as a live season's nightly retrain would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.seasons.season import Season, SeasonDay, config_digest, save

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "arena.example.toml"
STRATEGIES = ({"name": "hold", "family": "classical"}, {"name": "trend", "family": "classical"})
HALT_AT_H = 6.5  # hours into each UTC day: "trend" halts for its daily loss
HALT_REASON = "daily loss 5.2 % of capital ≥ the 5 % limit"


def season_days(n: int) -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    return [(today - dt.timedelta(days=n - 1 - i)).isoformat() for i in range(n)]


def journal_season(settings: Settings, name: str, days: int = 3) -> Season:
    """``days`` consecutive UTC days ending today, each a complete run with hourly equity and
    one halt; the manifest saved as ``arena season start`` leaves it."""
    season = Season(name=name, config=str(CONFIG), config_sha256=config_digest(CONFIG))
    for k, day in enumerate(season_days(days)):
        run_id = f"{name}-{day}"
        t0 = int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()) * 10**9
        clock = SimClock(t0)
        with Journal.open(settings, run_id=run_id, clock=clock) as j:
            j.record("runs", {"event": "started", "arena": {"capital": 10_000.0},
                              "strategies": list(STRATEGIES)})  # fmt: skip
            for h in range(25):
                clock.advance_to(t0 + h * 3600 * 10**9)
                if h == int(HALT_AT_H) + 1:
                    at = t0 + int(HALT_AT_H * 3600) * 10**9
                    j.record("risk_events", {"type": "halt", "strategy": "trend",
                                             "reason": HALT_REASON, "ts_ns": at})  # fmt: skip
                for s, drift in (("hold", 2.0 * (k + 1)), ("trend", -3.0)):
                    j.record("equity", {"strategy": s, "equity": 10_000.0 + drift * h,
                                        "qty": 0.0, "mark": 40_000.0, "fills": h})  # fmt: skip
            j.record("runs", {"event": "stopped", "ended_by": "feed ended", "complete": True})
            assert j.sync(30)
        season.days.append(SeasonDay(day=day, file=f"{day}.csv", run_id=run_id, attempts=1,
                                     complete=True))  # fmt: skip
    save(settings, season)
    return season
