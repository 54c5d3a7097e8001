"""A :class:`RunReport` as a terminal table, JSON, or Markdown with PNG plots.

Every format says the same things: the leaderboard after fees, halted strategies (reason and
time), whether the run is complete (or that it is unknown), and the one verdict sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptoarena.trading.results.model import RunReport, StrategyRow
from cryptoarena.trading.results.verdict import fmt_bp
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from cryptoarena.trading.results.source import Curve

logger = logging.getLogger(__name__)

COMPACT = ("#", "strategy", "family", "P&L", "fees", "fills", "win %", "max DD %", "halted")


def wide_console() -> Console:
    """Piped output has no terminal width: keep every column readable anyway."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None or value != value else format(value, spec)


def when(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "time unknown"
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def halted_text(row: StrategyRow) -> str:
    if row.halted is None:
        return ""
    h = row.halted
    scope = {"global": "global halt: ", "kill": "kill switch: "}.get(h.scope, "")
    return f"{scope}{h.reason} ({when(h.ts_ns)})"


def status_line(report: RunReport) -> str:
    """How the run ended, said plainly (complete / INCOMPLETE / unknown)."""
    ended = report.ended_by or "no stop record"
    if report.complete is True:
        state = "complete"
    elif report.complete is False:
        state = "INCOMPLETE"
    else:
        state = "completeness unknown"
    span = ""
    if report.start_ns is not None and report.end_ns is not None:
        span = f"; market {when(report.start_ns)} → {when(report.end_ns)}"
    return f"run {report.run_id}: {state} (ended by: {ended}){span}"


def sample_line(report: RunReport) -> str | None:
    """Whether the AI was scored on data its model never saw."""
    if report.in_sample is True:
        until = when(report.model_valid_until_ns) if report.model_valid_until_ns else "unknown"
        return f"IN-SAMPLE: the model was trained/validated on data up to {until}"
    if report.in_sample is False:
        if report.trade_from_ns:
            return (
                f"out of sample: scored from {when(report.trade_from_ns)} "
                "(after the model's validation end)"
            )
        # The replay lies wholly before or after the span the model saw: all of it is scored.
        until = when(report.model_valid_until_ns) if report.model_valid_until_ns else "unknown"
        return (
            "out of sample: the replay holds no bar the model trained or validated on "
            f"(its validation end: {until})"
        )
    return None


def rank_text(row: StrategyRow) -> str:
    """ "3", "=3" for a tie, "—" for an inactive strategy (no fills: not ranked)."""
    if row.rank is None:
        return "—"
    return f"={row.rank}" if row.tied else str(row.rank)


def status_text(row: StrategyRow) -> str:
    """Halted (at which loss limit), inactive, or nothing."""
    if row.halted is not None:
        return f"HALTED at the {row.at_limit} limit" if row.at_limit else "HALTED"
    return "inactive (no fills)" if row.inactive else ""


def family_label(row: StrategyRow) -> str:
    """The family, with the execution style when it is not the default (taker)."""
    return f"{row.family} · maker" if row.execution == "maker" else row.family


def _columns() -> dict[str, object]:
    return {
        "#": lambda i, r: rank_text(r),
        "strategy": lambda i, r: r.name,
        "family": lambda i, r: family_label(r),
        "P&L": lambda i, r: fmt(r.pnl),
        "return %": lambda i, r: fmt(r.return_pct, ".3f"),
        "fees": lambda i, r: fmt(r.fees),
        "fills": lambda i, r: str(r.fills),
        "trips": lambda i, r: str(r.round_trips),
        "win %": lambda i, r: fmt(None if r.win_rate is None else r.win_rate * 100, ".0f"),
        "PF": lambda i, r: fmt(r.profit_factor),
        "Sharpe/day": lambda i, r: fmt(r.sharpe_daily, ".2f"),
        "PSR": lambda i, r: fmt(r.psr, ".2f"),
        "Sortino/day": lambda i, r: fmt(r.sortino_daily, ".2f"),
        "max DD %": lambda i, r: fmt(r.max_drawdown * 100, ".2f"),
        "exposure %": lambda i, r: fmt(r.exposure * 100, ".0f"),
        "halted": lambda i, r: status_text(r),
    }


MARKOUT_HEAD = ("strategy", "reference", "1 s", "5 s", "15 s", "5 s maker", "5 s taker")


def _markout_cell(mean: float | None, n: int, ci: tuple[float, float] | None = None) -> str:
    if mean is None:
        return "—"
    interval = f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci is not None else ""
    return f"{mean:+.2f}{interval} (n {n})"


def markout_rows(report: RunReport) -> list[list[str]]:
    """Per strategy with markouts: the mean markout (bp) and its normal 95 % interval at each
    horizon, then makers and takers apart at 5 s."""
    rows: list[list[str]] = []
    for r in report.strategies:
        m = r.markouts
        if m is None:
            continue
        by = {h.horizon_s: h for h in m.horizons}
        cells = [r.name, m.reference or "—"]
        for h in (1, 5, 15):
            x = by.get(h)
            cells.append("—" if x is None else _markout_cell(x.mean_bp, x.fills, x.ci))
        five = by.get(5)
        cells.append("—" if five is None else _markout_cell(five.maker_mean_bp, five.maker_fills))
        cells.append("—" if five is None else _markout_cell(five.taker_mean_bp, five.taker_fills))
        rows.append(cells)
    return rows


MARKOUT_WORDS = (
    "Markouts: bp of the fill price, positive when the market then moved the fill's way "
    "(negative: adverse selection); reference = the book's mid, else the last trade; mean "
    "[95 % normal interval] (n fills)."
)


def render_table(console: Console, report: RunReport) -> None:
    columns = _columns()
    table = Table(title=f"leaderboard · run {report.run_id} (after fees)")
    # A narrow console (piped output, a small terminal) gets the columns that matter most.
    shown = [c for c in columns if console.width >= 140 or c in COMPACT]
    for col in shown:
        table.add_column(
            col, justify="left" if col in ("strategy", "family", "halted") else "right"
        )
    for i, r in enumerate(report.strategies, start=1):
        table.add_row(*(columns[c](i, r) for c in shown))  # type: ignore[operator]
    style = "green" if report.complete else "bold red" if report.complete is False else "yellow"
    console.print(status_line(report), style=style)
    sample = sample_line(report)
    if sample is not None:
        console.print(sample, style="bold red" if report.in_sample else "green")
    console.print(table)
    marks = markout_rows(report)
    if marks:
        mt = Table(title="fill markouts (bp)")
        for col in MARKOUT_HEAD:
            mt.add_column(col, justify="left" if col in ("strategy", "reference") else "right")
        for cells in marks:
            mt.add_row(*cells)
        console.print(mt)
        console.print(MARKOUT_WORDS, style="dim", highlight=False)
    for r in report.strategies:
        if r.halted is not None:
            console.print(f"[red]HALTED[/red] {r.name}: {halted_text(r)}")
    for note in report.notes:
        if "HALTED" not in note and not note.startswith("IN-SAMPLE"):
            console.print(f"note: {note}", style="yellow")
    v = report.verdict
    if v.comparisons:
        console.print(
            f"AI minus each rival, {v.unit} (basis points of capital per day), "
            f"{v.confidence:.0%} CI; * = excludes zero:",
            highlight=False,
        )
    for c in v.comparisons:
        mark = "*" if c.significant else " "
        holm = f" (Holm p {c.p_holm:.3g})" if c.p_holm is not None and v.ai_arms > 1 else ""
        sign = "+" if c.mean_diff_bp_day > 0 else ""
        console.print(
            f"  {c.ai} − {c.versus}: {sign}{fmt_bp(c.mean_diff_bp_day)} {v.unit} "
            f"[{fmt_bp(c.ci[0])}, {fmt_bp(c.ci[1])}] {mark}{holm}",
            highlight=False,
        )
    if v.selection is not None:
        s = v.selection
        console.print(
            f"best of {s.trials} by Sharpe: {s.best} (per-period Sharpe {s.sharpe:.4f} vs "
            f"{s.threshold:.4f} expected from luck; deflated Sharpe {fmt(s.dsr, '.2f')})",
            highlight=False,
        )
    for q in report.forecasts:
        console.print(_forecast_line(q.model_version, q), highlight=False)
    console.print(f"verdict: {v.sentence}", style="bold", highlight=False)


def _forecast_line(version: str, q: object) -> str:
    from cryptoarena.trading.results.model import ForecastQuality

    assert isinstance(q, ForecastQuality)
    da = fmt(None if q.directional_accuracy is None else q.directional_accuracy * 100, ".1f")
    return (
        f"forecasts v{version}: {q.predictions} resolved, MAE {q.mae_bps:.2f} bps vs persistence "
        f"{q.persistence_mae_bps:.2f} (MSE skill {fmt(q.skill, '+.3f')}, MAE skill "
        f"{fmt(q.mae_skill, '+.3f')}), direction right {da} % "
        f"of {q.moves} moves"
    )


def render_json(report: RunReport) -> str:
    return report.model_dump_json(indent=2)


def render_markdown(
    report: RunReport, out_dir: Path, curves: Mapping[str, Curve] | None = None
) -> Path:
    """``out_dir/report.md`` (and, given the curves, its PNG plots beside it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images: list[tuple[str, str]] = []
    if curves is not None:
        from cryptoarena.trading.results.plots import write_plots

        images = write_plots(report, curves, out_dir)
    lines = [f"# Run {report.run_id}", ""]
    status = status_line(report)
    lines += [f"**{status}**" if report.complete is not True else status, ""]
    sample = sample_line(report)
    if sample is not None:
        red = '<span style="color:red">**' + sample + "**</span>"
        lines += [red if report.in_sample else sample, ""]
    for note in report.notes:
        lines.append(f"- {note}")
    if report.notes:
        lines.append("")
    lines += ["## Verdict", "", f"**{report.verdict.sentence}**", ""]
    v = report.verdict
    if v.comparisons:
        lines += [f"| AI arm | versus | mean diff ({v.unit}) | CI | significant | p | Holm p |",
                  "| --- | --- | ---: | --- | --- | ---: | ---: |"]  # fmt: skip
        for c in v.comparisons:
            lines.append(
                f"| {c.ai} | {c.versus} | {c.mean_diff_bp_day:+.3f} | "
                f"[{c.ci[0]:.3f}, {c.ci[1]:.3f}] | {'yes' if c.significant else 'no'} | "
                f"{fmt(c.p_value, '.3g')} | {fmt(c.p_holm, '.3g')} |"
            )
        lines += [
            "",
            f"Differences in {v.unit} (basis points of capital per day: the mean per-snapshot "
            f"difference × snapshots per day). Paired moving-block bootstrap: {v.resamples} "
            f"resamples, block length {v.block_length} periods (Politis–White), {v.periods} "
            f"periods of {fmt(v.period_s, 'g')} s, {v.confidence:.0%} percentile intervals.",
            "",
        ]
    if v.selection is not None:
        s = v.selection
        lines += [
            f"Best of {s.trials} strategies by Sharpe: **{s.best}**, per-period Sharpe "
            f"{s.sharpe:.4f} against {s.threshold:.4f} that the best of {s.trials} reaches by "
            f"luck alone: deflated Sharpe ratio {fmt(s.dsr, '.3f')}.",
            "",
        ]
    lines += [
        "## Leaderboard (after fees)",
        "",
        "Ranked by P&L after fees; `=n` is a tie to the cent; `—` an inactive strategy (no "
        "fills). Sharpe and Sortino are per day, from daily returns (none under three UTC "
        "days); PSR is the probability that the per-snapshot Sharpe exceeds zero.",
        "",
    ]
    head = ["#", "strategy", "family", "P&L", "return %", "fees", "fills", "trips", "win %",
            "Sharpe/day", "PSR", "Sortino/day", "Calmar", "max DD %", "exposure %", "status"]  # fmt: skip
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in report.strategies:
        cells = [
            rank_text(r),
            r.name,
            family_label(r),
            fmt(r.pnl),
            fmt(r.return_pct, ".3f"),
            fmt(r.fees),
            str(r.fills),
            str(r.round_trips),
            fmt(None if r.win_rate is None else r.win_rate * 100, ".0f"),
            fmt(r.sharpe_daily, ".2f"),
            fmt(r.psr, ".2f"),
            fmt(r.sortino_daily, ".2f"),
            fmt(r.calmar, ".1f"),
            fmt(r.max_drawdown * 100, ".2f"),
            fmt(r.exposure * 100, ".0f"),
            f"**{status_text(r)}**: {halted_text(r)}" if r.halted else status_text(r),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    marks = markout_rows(report)
    if marks:
        lines += ["## Fill markouts (bp)", "", MARKOUT_WORDS, "",
                  "| " + " | ".join(MARKOUT_HEAD) + " |", "|" + " --- |" * len(MARKOUT_HEAD)]  # fmt: skip
        lines += ["| " + " | ".join(cells) + " |" for cells in marks]
        lines.append("")
    if report.forecasts:
        lines += ["## Forecast quality (prediction ledger)", "",
                  "| model version | resolved | MAE bps | persistence MAE bps | MSE skill | MAE skill | direction right % |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for q in report.forecasts:
            da = None if q.directional_accuracy is None else q.directional_accuracy * 100
            lines.append(
                f"| {q.model_version} | {q.predictions} | {q.mae_bps:.2f} | "
                f"{q.persistence_mae_bps:.2f} | {fmt(q.skill, '+.3f')} | "
                f"{fmt(q.mae_skill, '+.3f')} | {fmt(da, '.1f')} |"
            )
        lines.append("")
    for title, name in images:
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
