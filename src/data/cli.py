"""``arena data``: import recorded trade files into the lake, and say what the lake holds."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from cryptoarena.config import get_settings
from cryptoarena.console import make_console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

logger = logging.getLogger(__name__)

data_app = typer.Typer(
    help="Market data: the lake of trades and 1-second bars.", no_args_is_help=True
)


def _fmt_ns(ts: int | None) -> str:
    if ts is None:
        return "-"
    import numpy as np

    return str(np.datetime64(int(ts), "ns").astype("datetime64[s]")).replace("T", " ")


@data_app.command("import")
def import_cmd(
    paths: list[Path] = typer.Argument(..., help="Recorded trade files (format detected)."),
    symbol: str | None = typer.Option(
        None, help="Symbol to store under (default: guessed from the file name, else settings)."
    ),
    lake_dir: Path | None = typer.Option(None, "--lake", help="Lake folder (default: settings)."),
) -> None:
    """Import recorded trades (Tardis, Bybit dumps, Binance/Bitstamp feed logs, parquet) into the lake.

    Every file is checked (monotonic time, duplicate ids, prices) before anything is written;
    importing a file twice changes nothing."""
    from cryptoarena.data.ingest import import_file
    from cryptoarena.data.lake import Lake
    from cryptoarena.data.loaders import UnknownFormatError

    settings = get_settings()
    console = make_console()
    folders = [p for p in paths if p.is_dir()]
    if folders:
        typer.secho(
            f"error: {folders[0]} is a directory: give the files in it (e.g. {folders[0]}/*.gz)",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        typer.secho(f"error: no such file: {', '.join(map(str, missing))}", fg="red", err=True)
        raise typer.Exit(2)
    lake = Lake(lake_dir or settings.data.lake_dir)
    failed = 0
    table = Table(title=f"import into {lake.root}")
    table.add_column("file", overflow="fold")
    for col in ("symbol", "trades", "malformed", "new", "dupes", "days", "quality"):
        table.add_column(col, overflow="fold")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("importing", total=len(paths))
        for path in paths:
            progress.update(task, description=f"importing {path.name}")
            try:
                result = import_file(lake, path, symbol=symbol, default_symbol=settings.data.symbol)
            except (UnknownFormatError, ValueError, OSError) as exc:
                failed += 1
                typer.secho(f"error: {exc}", fg="red", err=True)
            else:
                gaps = len(result.quality.gaps) if result.quality else 0
                table.add_row(
                    path.name,
                    result.symbol,
                    f"{result.load.rows:,}",
                    str(result.load.malformed),
                    f"{result.added:,}",
                    f"{result.duplicates:,}",
                    ", ".join(str(w.day) for w in result.writes),
                    "ok" + (f", {gaps} gaps > 60 s" if gaps else ""),
                )
                if result.load.malformed:
                    for why in result.load.examples[:3]:
                        typer.secho(f"  {path.name}: malformed: {why}", fg="yellow", err=True)
            progress.advance(task)
    if table.row_count:  # every file refused: its error lines say all there is
        console.print(table)
    if failed:
        raise typer.Exit(1)


@data_app.command("info")
def info_cmd(
    lake_dir: Path | None = typer.Option(None, "--lake", help="Lake folder (default: settings)."),
) -> None:
    """What the lake holds: symbols, days, trade and bar counts, time spans."""
    from cryptoarena.data.lake import Lake

    lake = Lake(lake_dir or get_settings().data.lake_dir)
    parts = lake.info()
    console = make_console()
    if not parts:
        console.print(f"the lake at {lake.root} is empty (import files with `arena data import`)")
        return
    table = Table(title=f"lake at {lake.root}")
    for col in (
        "symbol",
        "date",
        "trades",
        "1s bars",
        "first trade",
        "last trade",
        "pending parts",
    ):
        table.add_column(col)
    for p in parts:
        table.add_row(
            p.symbol,
            str(p.day),
            f"{p.trades:,}",
            f"{p.bars:,}",
            _fmt_ns(p.first_ns),
            _fmt_ns(p.last_ns),
            str(p.pending_parts),
        )
    console.print(table)
    symbols = sorted({p.symbol for p in parts})
    console.print(
        f"{len(symbols)} symbol(s), {len(parts)} day(s), {sum(p.trades for p in parts):,} trades, "
        f"{sum(p.bars for p in parts):,} bars"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
