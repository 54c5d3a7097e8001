"""The dashboard API: read-only views over the journal, the live stream, and the kill switch
(the only write, and it needs the token)."""

from __future__ import annotations

import logging
import time
from typing import Any

from cryptoarena.dashboard import pages
from cryptoarena.dashboard import schemas as s
from cryptoarena.dashboard.deps import (
    HubDep,
    KillDep,
    KillThrottleDep,
    Limit,
    Offset,
    Points,
    ReaderDep,
    RegistryDep,
    RunQuery,
    SettingsDep,
    resolve_run,
)
from cryptoarena.dashboard.reader import DashboardReader
from cryptoarena.dashboard.registry_view import PAGE_WAIT_S
from cryptoarena.trading.risk.killswitch import KillSwitch, KillSwitchError
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api")


def _missing(exc: LookupError) -> HTTPException:
    return HTTPException(404, str(exc.args[0]) if exc.args else "not found")


@router.get("/health", response_model=s.Health)
def health(reader: ReaderDep) -> s.Health:
    return s.Health(
        ok=True, journal="embedded" if reader.embedded else "mongodb", runs=reader.run_count()
    )


@router.get("/runs", response_model=s.Page[s.RunInfo])
def runs(reader: ReaderDep, limit: Limit = 20, offset: Offset = 0) -> s.Page[s.RunInfo]:
    return reader.runs(limit, offset)


def _cached(reader: DashboardReader, name: str, run_id: str | None, *args: Any) -> Response:
    try:
        body = reader.cached_json(name, resolve_run(reader, run_id), *args)
    except LookupError as exc:
        raise _missing(exc) from None
    return Response(content=body, media_type="application/json")


@router.get("/leaderboard", response_model=s.Leaderboard)
def leaderboard(reader: ReaderDep, run_id: RunQuery = None) -> Response:
    return _cached(reader, "leaderboard", run_id)


@router.get("/equity", response_model=s.EquityCurves)
def equity(reader: ReaderDep, run_id: RunQuery = None, points: Points = 600) -> Response:
    return _cached(reader, "equity", run_id, points)


@router.get("/fills", response_model=s.Page[s.Fill])
def fills(
    reader: ReaderDep,
    run_id: RunQuery = None,
    strategy: str | None = Query(None, max_length=64),
    limit: Limit = 50,
    offset: Offset = 0,
) -> s.Page[s.Fill]:
    try:
        return reader.fills(resolve_run(reader, run_id), strategy, limit, offset)
    except LookupError as exc:
        raise _missing(exc) from None


@router.get("/positions", response_model=list[s.Position])
def positions(reader: ReaderDep, run_id: RunQuery = None) -> list[s.Position]:
    try:
        return reader.positions(resolve_run(reader, run_id))
    except LookupError as exc:
        raise _missing(exc) from None


@router.get("/strategies/{name}", response_model=s.StrategyDetail)
def strategy(
    reader: ReaderDep,
    name: str = Path(max_length=64),
    run_id: RunQuery = None,
    points: Points = 400,
) -> Response:
    return _cached(reader, "strategy", run_id, name, points)


@router.get("/forecasts", response_model=s.Forecasts)
def forecasts(
    reader: ReaderDep, run_id: RunQuery = None, last: int = Query(300, ge=1, le=2000)
) -> Response:
    return _cached(reader, "forecasts", run_id, last)


@router.get("/models", response_model=s.Models)
def models(reader: ReaderDep, registry: RegistryDep, run_id: RunQuery = None) -> s.Models:
    versions, drift, error = registry.get(wait_s=PAGE_WAIT_S)
    run = run_id or reader.latest_run_id()
    if run_id is not None and reader.run_info(run_id) is None:
        raise HTTPException(404, f"no run {run_id!r} in the journal")
    events = reader.model_events(run) if run else []
    return s.Models(
        # Not read yet, or changed since (a read still under way): the page asks again.
        pending=not registry.read_once or registry.outdated(),
        available=error is None and registry.read_once,
        error=error,
        name=registry.name,
        versions=versions,
        drift=drift,
        events=events,
    )


@router.get("/risk/events", response_model=s.Page[s.RiskEvent])
def risk_events(
    reader: ReaderDep,
    run_id: RunQuery = None,
    strategy: str | None = Query(None, max_length=64),
    limit: Limit = 50,
    offset: Offset = 0,
) -> s.Page[s.RiskEvent]:
    try:
        return reader.risk_events(resolve_run(reader, run_id), strategy, limit, offset)
    except LookupError as exc:
        raise _missing(exc) from None


def kill_state(kill: KillSwitch, settings_token: bool) -> s.KillState:
    state = kill.status()
    if not state:
        return s.KillState(engaged=False, token_configured=settings_token)
    return s.KillState(
        engaged=True,
        reason=state.get("reason"),
        by=state.get("by"),
        ts_ns=state.get("ts_ns"),
        token_configured=settings_token,
    )


@router.get("/risk", response_model=s.RiskView)
def risk(
    reader: ReaderDep, kill: KillDep, settings: SettingsDep, run_id: RunQuery = None
) -> s.RiskView:
    token = settings.trading.kill_token is not None
    run = run_id or reader.latest_run_id()
    if run is None:
        return s.RiskView(
            run_id=None, limits={}, halted={}, vetoes={}, kill=kill_state(kill, token)
        )
    try:
        limits, halted, vetoes = reader.risk_state(run)
    except LookupError as exc:
        raise _missing(exc) from None
    return s.RiskView(
        run_id=run, limits=limits, halted=halted, vetoes=vetoes, kill=kill_state(kill, token)
    )


@router.get("/kill", response_model=s.KillState)
def kill_status(kill: KillDep, settings: SettingsDep) -> s.KillState:
    return kill_state(kill, settings.trading.kill_token is not None)


@router.post("/kill", response_model=s.KillState)
def kill_switch(
    body: s.KillRequest,
    kill: KillDep,
    settings: SettingsDep,
    hub: HubDep,
    throttle: KillThrottleDep,
) -> s.KillState:
    """Engage or release the kill switch of every worker on this machine. Both need the token:
    a web page is not a terminal on the machine, so without a configured token it refuses.
    Wrong tokens spend a failure budget (see throttle.py): past it, 429 for a while."""
    if settings.trading.kill_token is None:
        raise HTTPException(403, "no kill token configured (ARENA_TRADING__KILL_TOKEN)")
    wait = throttle.retry_after()
    if wait:
        raise HTTPException(
            429,
            f"too many wrong kill-switch tokens: locked, retry in {wait} s "
            "(`arena kill` on the machine is not throttled)",
            headers={"Retry-After": str(wait)},
        )
    try:
        if body.action == "engage":
            kill.engage(body.token or None, body.reason, by="dashboard")
        else:
            kill.release(body.token or None, by="dashboard")
    except KillSwitchError as exc:
        throttle.failed(str(exc))
        raise HTTPException(403, str(exc)) from None
    throttle.succeeded()
    state = kill_state(kill, True)
    hub.publish("kill", state.model_dump())
    return state


@router.get("/status", response_model=s.Status)
def status(
    reader: ReaderDep,
    kill: KillDep,
    settings: SettingsDep,
    registry: RegistryDep,
    run_id: RunQuery = None,
) -> s.Status:
    ks = kill_state(kill, settings.trading.kill_token is not None)
    run_id = resolve_run(reader, run_id) if run_id else reader.latest_run_id()
    if run_id is None:
        return s.Status(run=None, bots=[], data_time_ns=None, lag_s=None, forecast_age_s=None,
                        model_version=None, kill=ks)  # fmt: skip
    info = reader.run_info(run_id)
    summaries = reader.summaries(run_id)
    families = reader.families(run_id)
    bots = []
    for name, family in families.items():
        halted = summaries.get(name, {}).get("halted")
        if ks.engaged:
            state = "killed"
        elif halted:
            state = "halted"
        elif info is not None and info.running:
            state = "running"
        else:
            state = "stopped"
        bots.append(s.BotStatus(strategy=name, family=family, state=state,
                                halted=str(halted) if halted else None))  # fmt: skip
    data_ns = reader.data_time(run_id)
    pred = reader.newest_prediction(run_id)
    version = pred.get("model_version") if pred else None
    first_ns = info.first_data_ns if info else None
    return s.Status(
        run=info,
        bots=bots,
        data_time_ns=data_ns,
        lag_s=(time.time_ns() - data_ns) / 1e9 if data_ns else None,
        forecast_age_s=(data_ns - int(pred["ts_ns"])) / 1e9 if pred and data_ns else None,
        model_version=version,
        # What the run recorded at its start (as `arena report` says it) wins; the registry's
        # training span is the fallback for runs that did not record it.
        sample=reader.leaderboard(run_id).sample or registry.sample(version, first_ns, data_ns),
        kill=ks,
    )


@router.get("/pages", response_model=list[s.SitePage])
def site_pages(settings: SettingsDep) -> list[s.SitePage]:
    return pages.list_pages(settings.dashboard.site_dir)


@router.get("/pages/{name}", response_model=s.SitePageBody)
def site_page(settings: SettingsDep, name: str = Path(max_length=64)) -> s.SitePageBody:
    page = pages.render_page(settings.dashboard.site_dir, name)
    if page is None:
        raise HTTPException(404, f"no page {name!r}")
    return page


@router.get("/stream", response_class=StreamingResponse)
async def stream(request: Request, hub: HubDep) -> StreamingResponse:
    """Server-Sent Events: fill, equity, forecast, risk, run and kill, each with an ``id``
    (a sequence number; a gap means events were dropped for this page: reload)."""
    return StreamingResponse(
        hub.stream(request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
