"""``arena flows``: the Prefect flows in flows/ (retrain, drift, collect) from the command line.

``arena flows run NAME [flow options]`` runs one flow now, ``arena flows serve`` serves all of
them on their schedules (flows/deployments.py), ``arena flows list`` says what there is. The
flows stay thin modules in flows/ (their logic is in the package); this only finds and starts
them, so nobody needs ``python -m flows.…``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from types import ModuleType

import typer
from cryptoarena.config import get_settings
from cryptoarena.console import quiet_libraries

logger = logging.getLogger(__name__)

flows_app = typer.Typer(
    help="Prefect flows: retrain, drift, collect. Run one now, or serve them on their schedules.",
    no_args_is_help=True,
)


class FlowName(StrEnum):
    RETRAIN = "retrain"
    DRIFT = "drift"
    COLLECT = "collect"


WHAT = {
    FlowName.RETRAIN: "train on every collected day, gate on the newest day (vs persistence and champion)",
    FlowName.DRIFT: "Wasserstein drift vs the training span's null (5 % false alarms); may retrain",
    FlowName.COLLECT: "backfill trades, record live trades and orderbook.50 by UTC day, compact, check",
}


class FlowsNotFound(RuntimeError):
    """The flows/ folder is not reachable from here."""


def _candidates() -> list[Path]:
    here = Path(__file__).resolve().parent.parent  # a source checkout: src/.. holds flows/
    return [Path.cwd(), get_settings().home.resolve(), here]


def import_flows(module: str) -> ModuleType:
    """``flows.<module>``, from the path, the current folder, ARENA_HOME or the checkout."""
    quiet_libraries()  # before prefect is imported
    try:
        return importlib.import_module(f"flows.{module}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("flows", f"flows.{module}"):
            raise
    for root in _candidates():
        if (root / "flows" / "__init__.py").is_file():
            sys.path.insert(0, str(root))
            return importlib.import_module(f"flows.{module}")
    raise FlowsNotFound(
        "the flows/ folder was not found: run arena from the project folder, or set ARENA_HOME "
        "to it"
    )


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@flows_app.command("list")
def list_flows() -> None:
    """What each flow does, and the schedules `arena flows serve` runs them on."""
    for name in FlowName:
        typer.echo(f"{name.value:<8} {WHAT[name]}")
    try:
        schedules = import_flows("schedules")  # no Prefect import: this listing is instant
    except FlowsNotFound as exc:
        _fail(exc)
    typer.echo(
        f"schedules (arena flows serve): collect every {schedules.COLLECT_INTERVAL_S // 60} min, "
        f"drift at cron '{schedules.DRIFT_CRON}', retrain at cron '{schedules.RETRAIN_CRON}' (UTC)"
    )


@flows_app.command(
    "run",
    add_help_option=False,  # options after NAME, --help included, belong to the flow
    help=(
        "Run one flow now; options after NAME go to the flow, e.g. `arena flows run retrain "
        "--tiny --force`, and `arena flows run NAME --help` lists them. Without PREFECT_API_URL "
        "each run starts a temporary local Prefect API (about 15 s); with it, the run shows in "
        "the Prefect UI."
    ),
    short_help="Run one flow now (options after NAME go to the flow).",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    ctx: typer.Context,
    name: str | None = typer.Argument(
        None, metavar="[" + "|".join(FlowName) + "]", help="The flow.", show_default=False
    ),
) -> None:
    if name is None or name in ("--help", "-h"):
        typer.echo(ctx.get_help())
        typer.echo("\nflows:\n" + "\n".join(f"  {n.value:<8} {WHAT[n]}" for n in FlowName))
        raise typer.Exit(0 if name else 2)
    if name not in set(FlowName):
        _fail(ValueError(f"unknown flow {name!r}: choose one of {', '.join(FlowName)}"))
    try:
        module = import_flows(name)
    except FlowsNotFound as exc:
        _fail(exc)
    module.main(list(ctx.args), prog=f"arena flows run {name}")


@flows_app.command("serve")
def serve() -> None:
    """Serve every flow on its schedule from this process.

    This process is the worker for their deployments. Runs appear in the Prefect UI of the server at PREFECT_API_URL (start one with
    `prefect server start`, then PREFECT_API_URL=http://127.0.0.1:4200/api)."""
    try:
        deployments = import_flows("deployments")
    except FlowsNotFound as exc:
        _fail(exc)
    if not os.environ.get("PREFECT_API_URL"):
        typer.secho(
            "note: PREFECT_API_URL is not set: the schedules run on a temporary local API with no "
            "UI; for the UI start `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
            fg=typer.colors.YELLOW,
            err=True,
        )
    deployments.main()


def register(app: typer.Typer) -> None:
    app.add_typer(flows_app, name="flows")
