"""``arena journal stats|compact``: the journal's growth per day, and its compaction."""

from __future__ import annotations

import datetime as dt
import logging

import typer

logger = logging.getLogger(__name__)

journal_app = typer.Typer(help="The journal's growth per day, and compacting old raw snapshots.",
                          no_args_is_help=True)  # fmt: skip


@journal_app.command("stats")
def stats() -> None:
    """Documents per run, UTC day (market time) and kind; the size on disk and per day."""
    from cryptoarena.config import get_settings
    from cryptoarena.trading.journal import Journal
    from cryptoarena.trading.journal.compaction import journal_stats

    with Journal.open(get_settings(), run_id="journal-stats", readonly=True) as journal:
        result = journal_stats(journal)
    for run in result.runs:
        typer.echo(f"run {run.run_id}")
        for day, counts in sorted(run.days.items()):
            date = dt.datetime.fromtimestamp(day / 1e9, dt.UTC).date()
            kinds = ", ".join(f"{k} {n:,}" for k, n in counts.items() if n)
            typer.echo(f"  {date}: {sum(counts.values()):,} documents ({kinds})")
    typer.echo(f"journal: {result.storage_bytes / 1e6:,.1f} MB on disk over {result.days} "
               f"day(s): {result.bytes_per_day / 1e6:,.1f} MB/day")  # fmt: skip


@journal_app.command("compact")
def compact(
    older_than_days: float = typer.Option(7.0, help="Compact raw snapshots older than this."),
    dry_run: bool = typer.Option(False, help="Count what would be deleted, delete nothing."),
) -> None:
    """Delete raw equity snapshots older than the age in runs whose report reads the
    per-minute read model (reports and verdicts do not change; short runs are kept whole)."""
    from cryptoarena.config import get_settings
    from cryptoarena.trading.journal import Journal
    from cryptoarena.trading.journal.compaction import MIN_AGE_S
    from cryptoarena.trading.journal.compaction import compact as run_compaction

    if older_than_days * 86_400 < MIN_AGE_S:
        typer.secho(f"error: --older-than-days must be at least {MIN_AGE_S / 86_400:.3f} "
                    "(one hour)", fg=typer.colors.RED, err=True)  # fmt: skip
        raise typer.Exit(2)
    with Journal.open(get_settings(), run_id="journal-compact", readonly=dry_run) as journal:
        done = run_compaction(journal, older_than_days * 86_400, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for run_id, n in done.deleted.items():
        typer.echo(f"{run_id}: {verb} {n:,} raw equity snapshots")
    if done.kept:
        typer.echo(f"kept whole (their report reads raw snapshots): {', '.join(done.kept)}")


def register(app: typer.Typer) -> None:
    app.add_typer(journal_app, name="journal")
