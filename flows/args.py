"""Command-line options the flows share (``arena flows run NAME`` / ``python -m flows.NAME``)."""

from __future__ import annotations

import argparse


def flow_parser(doc: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    """A parser with the flow's docstring as help; ``prog`` is how it was started
    (``arena flows run NAME`` or ``python -m flows.NAME``)."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def bars_flow_parser(
    doc: str | None, *, source: str, report_dir: str, prog: str | None = None
) -> argparse.ArgumentParser:
    """A flow parser with the options every bar-driven flow takes: where the bars come from,
    how many at most, and where the run report goes."""
    parser = flow_parser(doc, prog)
    parser.add_argument("--source", choices=["sample", "lake"], default=source)
    parser.add_argument("--max-bars", type=int, default=None)
    parser.add_argument("--report-dir", default=report_dir)
    return parser
