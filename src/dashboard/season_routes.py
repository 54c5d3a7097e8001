"""The dashboard's season API (issue #19 item 5, the season page): the seasons under
``<home>/seasons`` and one season's report (per-day blocks, cumulative P&L across days, the
season verdict and its power, the season's events), as ``arena season report --json`` prints it.
The champion changes come from the dashboard's cached registry view, not a fresh MLflow read."""

from __future__ import annotations

import logging
import threading

from cryptoarena.config import Settings
from cryptoarena.dashboard.deps import RegistryDep, SettingsDep
from cryptoarena.trading.seasons.report import SeasonReport, load_report, with_champions
from cryptoarena.trading.seasons.season import NAME, SeasonError
from fastapi import APIRouter, HTTPException, Path

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api")

# One report per season, recomputed only when its manifest changes (a day completed): reading
# every day's run from the journal is seconds of work, the manifest's mtime a syscall. Champion
# changes are added per request (a few registry entries, filtered by the season's span).
_cache: dict[str, tuple[float, SeasonReport]] = {}
_lock = threading.Lock()
MAX_CACHED = 16


def season_names(settings: Settings) -> list[str]:
    root = settings.home / "seasons"
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.json") if NAME.match(p.stem))


@router.get("/seasons", response_model=list[str])
def seasons(settings: SettingsDep) -> list[str]:
    return season_names(settings)


@router.get("/seasons/{name}", response_model=SeasonReport)
def season(
    settings: SettingsDep, registry: RegistryDep, name: str = Path(max_length=64)
) -> SeasonReport:
    return with_champions(_days_report(settings, name), *registry.champions())


def _days_report(settings: Settings, name: str) -> SeasonReport:
    if not NAME.match(name):
        raise HTTPException(404, f"no season {name!r}")
    path = settings.home / "seasons" / f"{name}.json"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise HTTPException(404, f"no season {name!r}") from None
    with _lock:
        hit = _cache.get(name)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    try:
        report = load_report(settings, name, champions=False)
    except SeasonError as exc:
        raise HTTPException(404, str(exc)) from None
    with _lock:
        if len(_cache) >= MAX_CACHED:
            _cache.pop(next(iter(_cache)))
        _cache[name] = (mtime, report)
    return report
