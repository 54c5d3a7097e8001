"""``arena report``: a run's report from the journal, as a table, JSON or Markdown with plots.

The pieces live in :mod:`cryptoarena.trading.results`; this module opens the journal read-only
(a report never takes the writer's lock, so it runs beside a trading worker) and prints.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptoarena.config import Settings
from cryptoarena.trading.results.model import ReportFormat, RunReport
from cryptoarena.trading.results.render import (
    render_json,
    render_markdown,
    render_table,
    wide_console,
)
from cryptoarena.trading.results.source import ReportData, build_report, collect, latest_run_id

logger = logging.getLogger(__name__)

__all__ = [
    "NoRunsError",
    "ReportFormat",
    "RunReport",
    "build_report",
    "latest_run_id",
    "load",
    "print_report",
    "wide_console",
]


class NoRunsError(LookupError):
    """The journal has no runs yet."""


def load(settings: Settings, run_id: str | None) -> ReportData:
    """The report of ``run_id`` (default: the most recently started run), read-only."""
    from cryptoarena.trading.journal import Journal

    with Journal.open(settings, run_id="report", readonly=True) as journal:
        run = run_id or latest_run_id(journal)
        if run is None:
            raise NoRunsError("the journal has no runs yet")
        return collect(journal, run)


def print_report(
    settings: Settings,
    run_id: str | None,
    fmt: ReportFormat = ReportFormat.table,
    out_dir: Path | None = None,
) -> Path | None:
    """Print (table, JSON) or write (Markdown + PNGs in ``out_dir/<run_id>/``) the report;
    returns the Markdown file's path when one was written."""
    data = load(settings, run_id)
    if fmt is ReportFormat.json:
        print(render_json(data.report))
        return None
    if fmt is ReportFormat.markdown:
        root = out_dir if out_dir is not None else settings.home / "reports"
        return render_markdown(data.report, root / data.report.run_id, data.curves)
    render_table(wide_console(), data.report)
    return None
