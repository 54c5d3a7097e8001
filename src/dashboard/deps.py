"""Dependencies of the dashboard routes (``Annotated`` aliases over ``app.state``)."""

from __future__ import annotations

from typing import Annotated

from cryptoarena.config import Settings
from cryptoarena.dashboard.live import LiveHub
from cryptoarena.dashboard.reader import DashboardReader
from cryptoarena.dashboard.registry_view import RegistryView
from cryptoarena.dashboard.throttle import TokenThrottle
from cryptoarena.trading.risk.killswitch import KillSwitch
from fastapi import Depends, HTTPException, Query, Request


def _reader(request: Request) -> DashboardReader:
    return request.app.state.reader


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _hub(request: Request) -> LiveHub:
    return request.app.state.hub


def _kill(request: Request) -> KillSwitch:
    return request.app.state.kill


def _kill_throttle(request: Request) -> TokenThrottle:
    return request.app.state.kill_throttle


def _registry(request: Request) -> RegistryView:
    return request.app.state.registry


ReaderDep = Annotated[DashboardReader, Depends(_reader)]
SettingsDep = Annotated[Settings, Depends(_settings)]
HubDep = Annotated[LiveHub, Depends(_hub)]
KillDep = Annotated[KillSwitch, Depends(_kill)]
KillThrottleDep = Annotated[TokenThrottle, Depends(_kill_throttle)]
RegistryDep = Annotated[RegistryView, Depends(_registry)]

RunQuery = Annotated[
    str | None,
    Query(
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="default: the latest run",
    ),
]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Points = Annotated[int, Query(ge=10, le=2000, description="chart width in points")]


def resolve_run(reader: DashboardReader, run_id: str | None) -> str:
    run = run_id or reader.latest_run_id()
    if run is None:
        raise HTTPException(404, "the journal has no runs yet")
    return run
