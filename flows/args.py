"""Command-line options the bar-driven flows share (``python -m flows.<name>``)."""

from __future__ import annotations

import argparse


def bars_flow_parser(doc: str | None, *, source: str, report_dir: str) -> argparse.ArgumentParser:
    """A parser with the flow's docstring as help and the options every bar-driven flow takes:
    where the bars come from, how many at most, and where the run report goes."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", choices=["sample", "lake"], default=source)
    parser.add_argument("--max-bars", type=int, default=None)
    parser.add_argument("--report-dir", default=report_dir)
    return parser
