"""``arena trade``, ``arena backtest``, ``arena report`` and ``arena kill``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from cryptoarena.config import get_settings
from cryptoarena.data.records import NS_PER_S
from cryptoarena.trading.results.model import ReportFormat

if TYPE_CHECKING:
    from cryptoarena.trading.config import ArenaConfig
    from cryptoarena.trading.engine.session import SessionOptions
    from cryptoarena.trading.forecasts.choice import ForecastChoice

logger = logging.getLogger(__name__)

CONFIG_HELP = "Arena TOML (strategies, limits); default: settings.trading.config."


# The closed choices as Enums, so --help lists them and a typo gets them in the error. They
# mirror engine.session's Source and ExchangeKind (a test keeps them equal) without importing
# the session machinery for `arena --help`.
class SourceChoice(StrEnum):
    REPLAY = "replay"
    BYBIT = "bybit"


class ForecasterChoice(StrEnum):  # mirrors trading.forecasts.choice.Forecaster (a test)
    CHAMPION = "champion"
    BOOK_RIDGE = "book-ridge"


class ExchangeChoice(StrEnum):
    PAPER = "paper"
    BYBIT_DEMO = "bybit-demo"
    BYBIT_TESTNET = "bybit-testnet"
    BYBIT_MAINNET = "bybit-mainnet"


def _fail(exc: Exception) -> NoReturn:
    """A user error: one red line, exit code 2, no traceback."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


def _session_options(
    source: SourceChoice, exchange: ExchangeChoice, **fields: Any
) -> SessionOptions:
    from cryptoarena.trading.engine.session import ExchangeKind, SessionOptions, Source

    return SessionOptions(
        source=Source(source.value), exchange=ExchangeKind(exchange.value), **fields
    )


def _check_venue(options: SessionOptions, config: ArenaConfig) -> None:
    """Refuse before anything starts: a directory as the replay file, or a Bybit exchange with
    no strategy bound to a keyed account (it would trade paper under a Bybit run name)."""
    from cryptoarena.trading.engine.session import ExchangeKind, SessionError, account_keys

    replay = options.replay_file
    if replay is not None and replay.is_dir():
        _fail(ValueError(f"--replay-file {replay} is a directory: give one recorded trade file"))
    if options.exchange is ExchangeKind.PAPER:
        return
    bound = sorted({a for a in config.accounts().values() if a})
    if not bound:
        _fail(
            SessionError(
                f"--exchange {options.exchange.value}: no strategy is bound to a Bybit account, "
                'so nothing would trade on Bybit; set account = "<name>" on strategies (or '
                "default_account under [arena]) and ARENA_ACCOUNTS__<NAME>__API_KEY / "
                "__API_SECRET, or use --exchange paper"
            )
        )
    for account in bound:
        try:
            account_keys(get_settings(), account)
        except SessionError as exc:
            _fail(exc)


def _load_config(path: Path | None) -> ArenaConfig:
    from cryptoarena.trading.config import ArenaConfigError, load_arena_config

    try:
        return load_arena_config(path or get_settings().trading.config)
    except ArenaConfigError as exc:
        _fail(exc)


def _run(options: SessionOptions, config_path: Path | None, report: bool) -> None:
    from cryptoarena.data.loaders import DamagedFileError, UnknownFormatError
    from cryptoarena.trading.engine.session import SessionError, run_session_sync, summary_line
    from cryptoarena.trading.exchange.errors import ExchangeError
    from cryptoarena.trading.journal.journal import JournalUnavailableError
    from cryptoarena.trading.journal.spill import JournalLockedError

    settings = get_settings()
    config = _load_config(config_path)
    _check_venue(options, config)
    try:
        result = run_session_sync(settings, config, options)
    except (
        SessionError,
        ExchangeError,
        JournalLockedError,
        JournalUnavailableError,
        FileNotFoundError,
        IsADirectoryError,
        UnknownFormatError,  # e.g. a kline (bar) file given as --replay-file
        DamagedFileError,  # a truncated .gz
    ) as exc:
        _fail(exc)
    typer.echo(f"run {result.run_id}: {summary_line(result)} ({result.stopped_by})")
    if report:
        _print_report(result.run_id)


def _run_bars(
    flag: bool,
    files: list[Path],
    config_path: Path | None,
    run_id: str | None,
    slippage_bps: float,
    equity_every: float,
) -> None:
    from cryptoarena.data.loaders import DamagedFileError, UnknownFormatError
    from cryptoarena.trading.engine.bar_session import BarRunOptions, run_bar_backtest
    from cryptoarena.trading.engine.session import SessionError, summary_line
    from cryptoarena.trading.journal.journal import JournalUnavailableError
    from cryptoarena.trading.journal.spill import JournalLockedError

    if not flag:
        _fail(ValueError(f"unexpected argument {files[0]}: kline files need --bars"))
    if not files:
        _fail(ValueError("--bars needs kline files: arena backtest --bars FILE..."))
    config = _load_config(config_path)
    options = BarRunOptions(
        files=tuple(files), run_id=run_id, slippage_bps=slippage_bps, equity_every_s=equity_every
    )
    try:
        result = run_bar_backtest(get_settings(), config, options)
    except (
        SessionError,
        JournalLockedError,
        JournalUnavailableError,
        DamagedFileError,  # a truncated .gz
        UnknownFormatError,
        FileNotFoundError,
    ) as exc:
        _fail(exc)
    typer.echo(f"run {result.run_id}: {summary_line(result)} ({result.stopped_by})")
    _print_report(result.run_id)


def _print_report(
    run_id: str | None, fmt: ReportFormat = ReportFormat.table, out_dir: Path | None = None
) -> None:
    from cryptoarena.trading.journal import JournalUnavailableError
    from cryptoarena.trading.results.report import NoRunsError, print_report

    try:
        written = print_report(get_settings(), run_id, fmt, out_dir)
    except NoRunsError as exc:
        typer.secho(str(exc), fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(1) from None
    except LookupError as exc:
        _fail(exc)
    except JournalUnavailableError as exc:
        _fail(RuntimeError(f"the journal did not answer: {exc or 'read timed out'}"))
    except OSError as exc:  # the Markdown's folder cannot be written
        _fail(RuntimeError(f"cannot write the report: {exc}"))
    if written is not None:
        typer.echo(f"report written to {written}")


def trade(
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    source: SourceChoice = typer.Option(SourceChoice.REPLAY, help="Market data."),
    exchange: ExchangeChoice = typer.Option(
        ExchangeChoice.PAPER, help="Where orders go (Bybit needs accounts bound in the TOML)."
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
        None,
        help="Trade file (default: the shipped real day); a Bitstamp feed log brings its "
        "recorded book (L2 and L3).",
    ),
    lake_day: datetime | None = typer.Option(
        None,
        formats=["%Y-%m-%d"],
        help="Replay this UTC day of the lake (settings.data.lake_dir) instead of a file: its "
        "trades of the arena's symbol and its recorded book (L2) if the collector kept one.",
        show_default=False,
    ),
    start_minute: float | None = typer.Option(
        None,
        help="Start this many minutes into the file (default: with a model, a 20 min warm-up "
        "before its validation end, so --minutes counts bars it never saw; else 0).",
        show_default=False,
    ),
    minutes: float | None = typer.Option(
        None, help="Only this many minutes (after the warm-up when the start is the default)."
    ),
    exchange: ExchangeChoice = typer.Option(ExchangeChoice.PAPER, help="Where orders go."),
    forecast_url: str | None = typer.Option(
        None, help="Model server (default: settings.serving.url, else the champion in-process)."
    ),
    allow_in_sample: bool = typer.Option(
        False, help="Also trade bars the AI model trained or validated on (run marked in-sample)."
    ),
    forecaster: ForecasterChoice = typer.Option(
        ForecasterChoice.CHAMPION,
        help="The AI arm's model: the served model or registered @champion, or book-ridge: the "
        "order-book ridge fitted on the replay's first --train-minutes (a replay with a book: "
        "a Bitstamp feed log), judged on the rest against persistence and tracked in MLflow.",
    ),
    train_minutes: float = typer.Option(
        720.0, min=1.0, help="--forecaster book-ridge: fit on this many first minutes."
    ),
    bars: bool = typer.Option(
        False, "--bars", help="Backtest on the 1 m kline FILES given (Binance daily CSVs)."
    ),
    files: list[Path] | None = typer.Argument(
        None, help="With --bars: kline files (or folders of them).", show_default=False
    ),
    slippage_bps: float = typer.Option(
        1.0, min=0.0, max=1000.0, help="--bars: market orders fill this far beyond the open."
    ),
    equity_every: float = typer.Option(
        3600.0, min=1.0, help="--bars: seconds of market time between equity snapshots."
    ),
) -> None:
    """Replay recorded trades as fast as possible through the same worker, then the leaderboard.
    With --bars: the same strategies on recorded 1 m klines (fills at the next bar's open)."""
    if bars or files:
        _run_bars(bars, files or [], config, run_id, slippage_bps, equity_every)
        return
    source = None
    choice = None
    if forecaster is ForecasterChoice.BOOK_RIDGE:
        choice = _book_ridge(config, replay_file, lake_day, train_minutes)
        source = choice.source
    if start_minute is None:
        # A lake day's minutes count from its 00:00 UTC (its first trade is at most seconds later).
        day_start_ns = (
            int(lake_day.replace(tzinfo=UTC).timestamp()) * NS_PER_S
            if lake_day is not None
            else None
        )
        start_minute, minutes, source = _out_of_sample_start(
            config, replay_file, minutes, forecast_url, allow_in_sample, day_start_ns, choice
        )
    opts = _session_options(
        source=SourceChoice.REPLAY,
        exchange=exchange,
        run_id=run_id,
        replay_file=replay_file,
        replay_day=lake_day.date() if lake_day is not None else None,
        start_minute=start_minute,
        minutes=minutes,
        speed=None,
        forecast_url=forecast_url,
        forecast_source=source,
        allow_in_sample=allow_in_sample,
    )
    _run(opts, config, report=True)


def _book_ridge(
    config_path: Path | None, replay_file: Path | None, lake_day: datetime | None, minutes: float
) -> ForecastChoice:
    """The book ridge's forecasts for this replay (a file with a recorded book)."""
    from cryptoarena.trading.forecasts.choice import book_ridge_forecasts

    if replay_file is None or lake_day is not None:
        _fail(ValueError("--forecaster book-ridge needs --replay-file with a recorded book"))
    config = _load_config(config_path)
    try:
        choice = book_ridge_forecasts(
            get_settings(), replay_file, minutes, window=config.arena.forecast_window
        )
    except (OSError, ValueError) as exc:
        _fail(exc)
    held = choice.held_out or {}

    def num(key: str, fmt: str = "+.4f") -> str:
        value = held.get(key)
        return "n/a" if value is None else format(value, fmt)  # None: persistence is exact

    typer.echo(
        f"AI arm: {choice.described}; held out {held.get('first')} to {held.get('last')} "
        f"({held.get('n', 0):,} forecasts): MSE skill vs persistence {num('skill')} (95 % CI "
        f"[{num('skill_lo')}, {num('skill_hi')}], DM p {num('dm_p', '.2g')}), MAE skill "
        f"{num('mae_skill')}"
    )
    return choice


def _out_of_sample_start(
    config_path: Path | None,
    replay_file: Path | None,
    minutes: float | None,
    forecast_url: str | None,
    allow_in_sample: bool,
    first_ns: int | None = None,
    choice: ForecastChoice | None = None,
) -> tuple[float, float | None, Any]:
    """(start minute, minutes, in-process forecasts) for a backtest given no --start-minute: a
    replay that overlaps the span the model was trained and validated on starts a warm-up
    before its validation end, so it has bars the model never saw to trade. Without an AI arm,
    a model or its training span, a replay wholly outside that span, or with
    --allow-in-sample: 0. ``choice``: the forecasts already chosen (else the champion's)."""
    from cryptoarena.trading.forecasts.choice import WARMUP_MINUTES, choose_forecasts, replay_span

    config = _load_config(config_path)
    source = None if choice is None else choice.source
    if allow_in_sample or not any(s.kind == "ai_forecast" for s in config.strategies):
        return 0.0, minutes, source
    settings = get_settings()
    choice = choice or choose_forecasts(settings, forecast_url)
    trained = choice.trained
    if trained is None:
        return 0.0, minutes, choice.source
    try:
        # A lake day: its 00:00 UTC to its end (its trades lie inside).
        first, last = (
            replay_span(settings, replay_file)
            if first_ns is None
            else (first_ns, first_ns + 86_400 * NS_PER_S - 1)
        )
    except (OSError, ValueError):  # the session reports a bad replay file the usual way
        return 0.0, minutes, choice.source
    if not trained.overlaps(first, last):  # the model never saw any of it
        return 0.0, minutes, choice.source
    until = (trained.until_ns - first) / (60 * NS_PER_S)
    start = max(0.0, until - WARMUP_MINUTES)
    typer.echo(
        f"replay from minute {start:.0f}: {until - start:.0f} min of warm-up, then bars after the "
        f"model's validation end ({choice.described}); --start-minute to choose"
    )
    return start, None if minutes is None else minutes + (until - start), choice.source


def report(
    run_id: str | None = typer.Option(
        None, help="Run to report (default: the most recently started run)."
    ),
    format: ReportFormat = typer.Option(
        ReportFormat.table,
        "--format",
        "-f",
        help="table (terminal), json (for scripts and the dashboard), markdown (with PNG plots).",
    ),
    out: Path | None = typer.Option(
        None, help="Markdown: write into OUT/<run_id>/ (default: <settings.home>/reports)."
    ),
) -> None:
    """A run's report from the journal (read-only): P&L after fees, risk ratios, halts, whether
    the run is complete, forecast quality, and one verdict on AI vs classical."""
    _print_report(run_id, format, out)


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
