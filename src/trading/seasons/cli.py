"""``arena season start|status|report``: consecutive UTC days of one config as one object."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NoReturn

import typer
from cryptoarena.config import get_settings

logger = logging.getLogger(__name__)

season_app = typer.Typer(
    help="Seasons: consecutive UTC days of one arena config, one run a day, one verdict.",
    no_args_is_help=True,
)


def _fail(exc: Exception) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


@season_app.command("start")
def start(
    name: str = typer.Argument(..., help="The season's name (letters, digits, . _ -)."),
    files: list[Path] = typer.Argument(..., help="1 m kline files, one per consecutive UTC day."),
    config: Path = typer.Option(..., "--config", "-c", help="The arena config (TOML)."),
    equity_every: float = typer.Option(300.0, min=1.0, help="Seconds between equity snapshots."),
) -> None:
    """Start a season, or resume it: runs every day without a complete run (safe to repeat)."""
    from cryptoarena.trading.config import ArenaConfigError, load_arena_config
    from cryptoarena.trading.engine.bar_session import BarRunOptions, run_bar_backtest
    from cryptoarena.trading.engine.session import SessionError
    from cryptoarena.trading.seasons.season import (
        SeasonDay,
        SeasonError,
        open_season,
        run_pending,
    )

    settings = get_settings()
    try:
        cfg = load_arena_config(config)
        season = open_season(settings, name, config, files, equity_every)
    except (SeasonError, ArenaConfigError, OSError) as exc:
        _fail(exc)

    def run_day(day: SeasonDay, run_id: str) -> bool:
        opts = BarRunOptions(
            files=(Path(day.file),),
            run_id=run_id,
            equity_every_s=season.equity_every_s,
            progress=False,
        )
        result = run_bar_backtest(settings, cfg, opts)
        typer.echo(f"{day.day}: run {run_id} ({result.stopped_by})")
        return True

    try:
        run_pending(settings, season, run_day)
    except (SessionError, OSError) as exc:
        _fail(exc)
    typer.echo(f"season {name}: {len(season.days)} days complete; arena season report {name}")


@season_app.command("status")
def status(name: str = typer.Argument(..., help="The season's name.")) -> None:
    """Which days have a complete run."""
    from cryptoarena.trading.seasons.season import SeasonError, load

    try:
        season = load(get_settings(), name)
    except SeasonError as exc:
        _fail(exc)
    done = sum(d.complete for d in season.days)
    typer.echo(
        f"season {name}: {done} of {len(season.days)} UTC days complete (config {season.config})"
    )
    for d in season.days:
        state = "complete" if d.complete else ("interrupted" if d.run_id else "pending")
        typer.echo(f"  {d.day}  {state:<11} {d.run_id or ''}")


@season_app.command("report")
def report(
    name: str = typer.Argument(..., help="The season's name."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Per-day blocks, cumulative P&L and the season verdict with its power."""
    from cryptoarena.trading.journal import JournalUnavailableError
    from cryptoarena.trading.results.render import wide_console
    from cryptoarena.trading.seasons.report import load_report, render_table
    from cryptoarena.trading.seasons.season import SeasonError

    try:
        rep = load_report(get_settings(), name)
    except (SeasonError, JournalUnavailableError) as exc:
        _fail(exc)
    if json_out:
        print(rep.model_dump_json(indent=2))
        return
    render_table(wide_console(), rep)


def register(app: typer.Typer) -> None:
    app.add_typer(season_app, name="season")
