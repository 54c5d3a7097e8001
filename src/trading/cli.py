"""``arena trade``, ``arena backtest``, ``arena report`` and ``arena kill``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from cryptoarena.config import get_settings

if TYPE_CHECKING:
    from cryptoarena.trading.arena_config import ArenaConfig
    from cryptoarena.trading.session import SessionOptions

logger = logging.getLogger(__name__)

CONFIG_HELP = "Arena TOML (strategies, limits); default: settings.trading.config."


def _fail(exc: Exception) -> NoReturn:
    """A user error: one red line, exit code 2, no traceback."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


def _session_options(source: str, exchange: str, **fields: Any) -> SessionOptions:
    """The command's options, or a clear error for an unknown source or exchange."""
    from cryptoarena.trading.session import ExchangeKind, SessionOptions, Source

    try:
        return SessionOptions(source=Source(source), exchange=ExchangeKind(exchange), **fields)
    except ValueError as exc:
        _fail(exc)


def _load_config(path: Path | None) -> ArenaConfig:
    from cryptoarena.trading.arena_config import ArenaConfigError, load_arena_config

    try:
        return load_arena_config(path or get_settings().trading.config)
    except ArenaConfigError as exc:
        _fail(exc)


def _run(options: SessionOptions, config_path: Path | None, report: bool) -> None:
    from cryptoarena.trading.exchange.errors import ExchangeError
    from cryptoarena.trading.journal.spill import JournalLockedError
    from cryptoarena.trading.session import SessionError, run_session_sync, summary_line

    settings = get_settings()
    config = _load_config(config_path)
    try:
        result = run_session_sync(settings, config, options)
    except (SessionError, ExchangeError, JournalLockedError, FileNotFoundError) as exc:
        _fail(exc)
    typer.echo(f"run {result.run_id}: {summary_line(result)} ({result.stopped_by})")
    if report:
        _print_report(result.run_id)


def _print_report(run_id: str | None) -> None:
    from cryptoarena.trading.journal import Journal
    from cryptoarena.trading.report import latest_run_id, leaderboard, render, wide_console

    settings = get_settings()
    with Journal.open(settings, run_id=run_id or "report") as journal:
        run = run_id or latest_run_id(journal)
        if run is None:
            typer.secho("the journal has no runs yet", fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(1)
        try:
            rows, comparison = leaderboard(journal, run)
        except LookupError as exc:
            _fail(exc)
        render(wide_console(), run, rows, comparison)


def trade(
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    source: str = typer.Option("replay", help="Market data: replay | bybit."),
    exchange: str = typer.Option(
        "paper", help="paper | bybit-demo | bybit-testnet | bybit-mainnet."
    ),
    run_id: str | None = typer.Option(
        None, help="Resume this run (books restored) or name a new one."
    ),
    replay_file: Path | None = typer.Option(
        None, help="Trade file to replay (default: the shipped real day)."
    ),
    start_minute: float = typer.Option(0.0, help="Replay: start this many minutes into the file."),
    minutes: float | None = typer.Option(None, help="Replay: only this many minutes."),
    speed: float | None = typer.Option(
        None, help="Replay speed (1 = real time; default: real time for trade)."
    ),
    forecast_url: str | None = typer.Option(
        None, help="Model server (default: settings.serving.url)."
    ),
    allow_mainnet: bool = typer.Option(False, help="Required to trade real money on mainnet."),
) -> None:
    """Trade all configured strategies side by side on a live or replayed market."""
    opts = _session_options(
        source=source,
        exchange=exchange,
        run_id=run_id,
        replay_file=replay_file,
        start_minute=start_minute,
        minutes=minutes,
        speed=(speed or 1.0) if source == "replay" else speed,
        forecast_url=forecast_url,
        allow_mainnet=allow_mainnet,
    )
    _run(opts, config, report=False)


def backtest(
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    run_id: str | None = typer.Option(
        None, help="Resume this run (books restored) or name a new one."
    ),
    replay_file: Path | None = typer.Option(
        None, help="Trade file (default: the shipped real day)."
    ),
    start_minute: float = typer.Option(0.0, help="Start this many minutes into the file."),
    minutes: float | None = typer.Option(None, help="Only this many minutes."),
    exchange: str = typer.Option("paper", help="paper (default) or a Bybit venue."),
    forecast_url: str | None = typer.Option(
        None, help="Model server (default: settings.serving.url, else the champion in-process)."
    ),
    allow_in_sample: bool = typer.Option(
        False, help="Also trade bars the AI model trained or validated on (run marked in-sample)."
    ),
) -> None:
    """Replay recorded trades as fast as possible through the same worker, then the leaderboard."""
    opts = _session_options(
        source="replay",
        exchange=exchange,
        run_id=run_id,
        replay_file=replay_file,
        start_minute=start_minute,
        minutes=minutes,
        speed=None,
        forecast_url=forecast_url,
        allow_in_sample=allow_in_sample,
    )
    _run(opts, config, report=True)


def report(
    run_id: str | None = typer.Option(None, help="Run to report (default: the latest)."),
) -> None:
    """The leaderboard of a run from the journal: P&L after fees, risk ratios, AI vs classical."""
    _print_report(run_id)


def kill(
    reason: str = typer.Option("operator kill switch", help="Why (journaled by every worker)."),
    token: str | None = typer.Option(
        None,
        envvar="ARENA_TRADING__KILL_TOKEN",
        help="The kill token (settings.trading.kill_token).",
    ),
    release: bool = typer.Option(False, "--release", help="Release the kill switch instead."),
    status: bool = typer.Option(False, "--status", help="Only show whether it is engaged."),
) -> None:
    """Stop all trading now, in every worker on this machine (they poll the kill file)."""
    from cryptoarena.trading.risk.killswitch import KillSwitchError, kill_switch

    settings = get_settings()
    switch = kill_switch(settings)
    if status:
        state = switch.status()
        typer.echo(f"kill switch engaged: {state}" if state else "kill switch not engaged")
        return
    try:
        if release:
            switch.release(token)
            typer.echo("kill switch release written: each worker verifies it against its own token")
        else:
            switch.engage(token, reason, by="cli")
            typer.echo(f"kill switch engaged ({settings.trading.kill_file}): {reason}")
    except KillSwitchError as exc:
        _fail(exc)


def register(app: typer.Typer) -> None:
    app.command("trade")(trade)
    app.command("backtest")(backtest)
    app.command("report")(report)
    app.command("kill")(kill)
