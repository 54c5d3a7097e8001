"""A season's events: champion changes of the served model and each day's halts, in time order
(issue #19 items 3 and 5: "every champion change is a season event", "model versions and halts
on the timeline").

The one rule of which champion changes belong to a season lives here (:func:`champion_events`):
those whose time falls within the season's UTC days, from the first day's 00:00 to the end of
the last day. A live season's nightly retrain crowns inside its span; replaying days recorded
long ago does not make today's promotions part of that old span (they are listed as outside).
The change just before the span is kept apart: the champion the season started with.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from cryptoarena.model.champions import ChampionChange
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from cryptoarena.config import Settings

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
# risk_events types that stop trading (a strategy's halt, the global halt, the kill switch).
HALT_TYPES = ("halt", "global_halt", "kill")
_SCOPE = {"halt": "strategy", "global_halt": "global", "kill": "kill"}


class SeasonEvent(BaseModel):
    """One event on the season's timeline (``at_ms``: epoch milliseconds, UTC)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["champion", "halt"]
    at_ms: int
    day: str  # the UTC date of at_ms
    # champion: the model, its new @champion version, how it was crowned (gate, forced,
    # bootstrap) and the promotion message the registry recorded.
    model: str | None = None
    version: str | None = None
    how: str | None = None
    message: str | None = None
    # halt: the strategy ("*" when global or the kill switch), why, and the day's run.
    strategy: str | None = None
    reason: str | None = None
    scope: str | None = None
    run_id: str | None = None


class SeasonEvents(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: list[SeasonEvent] = []  # champion changes and halts in the span, oldest first
    champion_at_start: SeasonEvent | None = None  # the last change before the span
    champions_outside: int = 0  # changes after the span (e.g. crowned while replaying it)
    champions_note: str | None = None  # why the registry could not be read, when it could not
    champions_pending: bool = False  # the dashboard's first registry read is under way


def utc_day(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).date().isoformat()


def season_span_ms(days: Sequence[str]) -> tuple[int, int] | None:
    """[first day's 00:00 UTC, the end of the last day) in epoch ms; None without days."""
    if not days:
        return None
    first = dt.datetime.fromisoformat(min(days)).replace(tzinfo=dt.UTC)
    last = dt.datetime.fromisoformat(max(days)).replace(tzinfo=dt.UTC)
    return int(first.timestamp() * 1000), int(last.timestamp() * 1000) + DAY_MS


def champion_event(change: ChampionChange) -> SeasonEvent:
    return SeasonEvent(
        kind="champion",
        at_ms=int(change.at_ms),
        day=utc_day(int(change.at_ms)),
        model=change.model,
        version=str(change.version),
        how=change.how,
        message=change.message,
    )


def champion_events(days: Sequence[str], changes: Iterable[ChampionChange]) -> SeasonEvents:
    """THE rule: the champion changes of a season with these UTC days are those inside its span;
    the newest change before it is the champion the season started with."""
    span = season_span_ms(days)
    ordered = sorted(changes, key=lambda c: (int(c.at_ms), str(c.version)))
    if span is None:
        return SeasonEvents(champions_outside=len(ordered))
    start, end = span
    inside = [champion_event(c) for c in ordered if start <= c.at_ms < end]
    before = [c for c in ordered if c.at_ms < start]
    return SeasonEvents(
        events=inside,
        champion_at_start=champion_event(before[-1]) if before else None,
        champions_outside=sum(1 for c in ordered if c.at_ms >= end),
    )


def halt_events(run_id: str, risk_events: Iterable[Mapping[str, Any]]) -> list[SeasonEvent]:
    """Every halt, global halt and kill of one day's run (its ``risk_events``), oldest first."""
    out = []
    for e in sorted(risk_events, key=lambda e: int(e.get("ts_ns") or 0)):
        kind = str(e.get("type"))
        if kind not in HALT_TYPES or e.get("ts_ns") is None:
            continue
        at_ms = int(e["ts_ns"]) // 1_000_000
        out.append(
            SeasonEvent(
                kind="halt",
                at_ms=at_ms,
                day=utc_day(at_ms),
                strategy=str(e.get("strategy") or "*"),
                reason=str(e.get("reason", "")),
                scope=_SCOPE[kind],
                run_id=run_id,
            )
        )
    return out


def merged(champions: SeasonEvents, halts: Iterable[SeasonEvent]) -> SeasonEvents:
    """Champion changes and halts on one timeline, oldest first."""
    events = sorted([*champions.events, *halts], key=lambda e: (e.at_ms, e.kind))
    return champions.model_copy(update={"events": events})


def read_champions(settings: Settings) -> tuple[list[ChampionChange], str | None]:
    """Every change of the served model's ``@champion`` from the registry, and why not when the
    registry cannot be read (the season report then says so instead of failing)."""
    from cryptoarena.model.registry import champion_history  # MLflow and torch: slow to import

    try:
        return champion_history(
            settings.serving.model_name, tracking_uri=settings.mlflow.tracking_uri
        ), None
    except Exception as exc:  # the registry is optional for a season report
        logger.warning("season: MLflow registry unreadable: %s", exc)
        return [], f"model registry unreadable: {type(exc).__name__}: {exc}"[:300]
