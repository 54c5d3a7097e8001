"""A season: consecutive UTC days of one arena config, each day its own run in the journal.

The season itself is a small JSON manifest (``<home>/seasons/<name>.json``: the config's path
and SHA-256, the days and the run of each) written atomically after every day, so a restart of
the worker, the model server or the dashboard loses nothing: ``arena season start`` again runs
only the days without a complete run (a day cut off mid-run is run again under a new run id;
bar runs are minutes long and deterministic). Reports read the runs from the journal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptoarena.config import Settings
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DAY_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


class SeasonError(ValueError):
    """A season cannot be started, resumed or read (said in one line)."""


class SeasonDay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: str  # UTC date, YYYY-MM-DD
    file: str  # the kline file replayed for that day
    run_id: str | None = None  # the newest run of the day
    attempts: int = 0
    complete: bool = False


class Season(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source: str = "bars"  # recorded 1 m klines replayed (live days: not yet)
    config: str
    config_sha256: str
    equity_every_s: float = 300.0
    days: list[SeasonDay] = Field(default_factory=list)


def season_path(settings: Settings, name: str) -> Path:
    if not NAME.match(name):
        raise SeasonError(f"bad season name {name!r}: letters, digits, '.', '_', '-' only")
    return settings.home / "seasons" / f"{name}.json"


def save(settings: Settings, season: Season) -> None:
    """Atomically: a crash leaves the old manifest or the new one, never half of one."""
    path = season_path(settings, season.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(season.model_dump_json(indent=2))
    os.replace(tmp, path)


def load(settings: Settings, name: str) -> Season:
    path = season_path(settings, name)
    if not path.is_file():
        raise SeasonError(f"no season {name!r} (start one with: arena season start {name} ...)")
    try:
        return Season.model_validate_json(path.read_text())
    except ValueError as exc:
        raise SeasonError(f"season file {path} is damaged: {str(exc).splitlines()[0]}") from None


def utc_days(files: Sequence[Path]) -> list[tuple[str, Path]]:
    """(day, file) from kline file names, checked to be consecutive UTC days of one symbol."""
    out: list[tuple[str, Path]] = []
    for f in files:
        m = DAY_IN_NAME.search(f.name)
        if m is None:
            raise SeasonError(f"{f}: no UTC date (YYYY-MM-DD) in the file name")
        out.append((m.group(1), f))
    out.sort()
    dates = [dt.date.fromisoformat(d) for d, _ in out]
    for a, b in itertools.pairwise(dates):
        if (b - a).days != 1:
            raise SeasonError(f"the days are not consecutive: {a} then {b}")
    if not out:
        raise SeasonError("a season needs at least one day (kline files)")
    return out


def config_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_season(
    settings: Settings, name: str, config: Path, files: Sequence[Path], equity_every_s: float
) -> Season:
    """The season ``name``: created, or the existing one extended with later days. One config
    per season: a different config file (by content) is refused."""
    if not config.is_file():
        raise SeasonError(f"config {config} not found")
    digest = config_digest(config)
    days = utc_days(files)
    path = season_path(settings, name)
    if not path.exists():
        season = Season(
            name=name,
            config=str(config),
            config_sha256=digest,
            equity_every_s=equity_every_s,
            days=[SeasonDay(day=d, file=str(f)) for d, f in days],
        )
        save(settings, season)
        return season
    season = load(settings, name)
    if season.config_sha256 != digest:
        raise SeasonError(
            f"season {name!r} runs config {season.config} (sha256 {season.config_sha256[:12]}); "
            f"{config} differs: one season, one config"
        )
    known = {d.day for d in season.days}
    season.days += [SeasonDay(day=d, file=str(f)) for d, f in days if d not in known]
    season.days.sort(key=lambda d: d.day)
    utc_days([Path(d.file) for d in season.days])  # still consecutive
    save(settings, season)
    return season


RunDay = Callable[[SeasonDay, str], bool]  # (day, run id) -> the run completed


def run_pending(settings: Settings, season: Season, run_day: RunDay) -> list[str]:
    """Run every day without a complete run, oldest first, saving the manifest before and after
    each (before: a crash mid-day leaves the attempt recorded, so the retry takes a new id)."""
    ran: list[str] = []
    for day in season.days:
        if day.complete:
            continue
        day.attempts += 1
        suffix = "" if day.attempts == 1 else f"-r{day.attempts}"
        day.run_id = f"{season.name}-{day.day}{suffix}"
        save(settings, season)
        logger.info("season %s: day %s as run %s", season.name, day.day, day.run_id)
        day.complete = run_day(day, day.run_id)
        save(settings, season)
        ran.append(day.run_id)
    return ran


def as_json(season: Season) -> str:
    return json.dumps(season.model_dump(), indent=2)
