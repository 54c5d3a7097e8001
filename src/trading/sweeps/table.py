"""The sweep's table: every point's score, and the best point with its deflated Sharpe ratio.

The best point is the one with the highest per-period Sharpe ratio, and its deflated Sharpe
ratio (DSR) is computed for the number of points tried, by
:func:`cryptoarena.trading.results.significance.deflated_sharpe` (the same code the run report
uses): the more points a sweep tries, the higher the Sharpe ratio luck alone reaches, and the
lower the DSR of the same best point. Points whose Sharpe ratio is undefined (no variance: they
never traded) cannot enter that computation; the table says how many trials it counted.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptoarena.trading.results.significance import deflated_sharpe
from cryptoarena.trading.sweeps.backtest import PointResult

SIGNIFICANT = 0.95  # a DSR above this: the best point's edge survives the selection


@dataclass(frozen=True)
class SweepSummary:
    name: str
    kind: str
    points: int
    failed: int
    skipped: int
    best: str | None  # point id
    best_label: str | None
    best_sharpe_pp: float | None  # per period
    threshold_pp: float | None  # SR₀: the per-period Sharpe the best of N reaches by luck
    trials: int
    dsr: float | None
    sentence: str
    rows: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _row(r: PointResult) -> dict[str, Any]:
    return {
        "point": r.point.point_id,
        **{k: v for k, v in r.point.swept.items()},
        "start_minute": r.point.span.start_minute,
        "minutes": r.point.span.minutes,
        "pnl": r.pnl,
        "fees": r.fees,
        "fills": r.fills,
        "sharpe": r.sharpe,
        "max_drawdown": r.max_drawdown,
        "psr": r.psr,
        "wall_s": round(r.wall_s, 3),
        "run_id": r.run_id,
        "error": r.error,
    }


def _sentence(best: str | None, label: str | None, trials: int, dsr: float | None) -> str:
    if best is None:
        return "No best point: no point has a defined Sharpe ratio (none traded, or all failed)."
    if dsr is None:
        return f"Best point {best} ({label}); its deflated Sharpe ratio is undefined."
    verdict = (
        "its edge survives the selection"
        if dsr > SIGNIFICANT
        else f"not significant at {SIGNIFICANT:.0%}: luck alone explains it"
    )
    return (
        f"Best point {best} ({label}): deflated Sharpe ratio {dsr:.3f} for {trials} points "
        f"tried; {verdict}."
    )


def summarise(
    name: str, kind: str, results: Sequence[PointResult], skipped: int = 0
) -> SweepSummary:
    done = [r for r in results if r.ok]
    by_id = {r.point.point_id: r for r in done}
    deflated = deflated_sharpe({r.point.point_id: r.returns for r in done})
    best = deflated.best if deflated is not None else None
    label = by_id[best].point.label() if best is not None else None
    dsr = deflated.dsr if deflated is not None else None
    ordered = sorted(
        results,
        key=lambda r: (not r.ok, -(r.sharpe if r.sharpe is not None else -math.inf)),
    )
    return SweepSummary(
        name=name,
        kind=kind,
        points=len(results),
        failed=len(results) - len(done),
        skipped=skipped,
        best=best,
        best_label=label,
        best_sharpe_pp=deflated.sharpe if deflated is not None else None,
        threshold_pp=deflated.threshold if deflated is not None else None,
        trials=deflated.trials if deflated is not None else 0,
        dsr=dsr,
        sentence=_sentence(best, label, deflated.trials if deflated else 0, dsr),
        rows=[_row(r) for r in ordered],
    )


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if math.isfinite(value) else "—"
    return str(value)


def columns(summary: SweepSummary) -> list[str]:
    keys: list[str] = []
    for row in summary.rows:
        keys += [k for k in row if k not in keys]
    return keys


def render_markdown(summary: SweepSummary) -> str:
    head = ["point", *(k for k in columns(summary) if k not in _FIXED), "span (min)"]
    head += ["P&L after fees", "fees", "fills", "Sharpe", "max DD", "PSR", ""]
    lines = [
        f"# Sweep {summary.name}: {summary.kind}, {summary.points} points",
        "",
        summary.sentence,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in summary.rows:
        swept = [_fmt(row.get(k)) for k in columns(summary) if k not in _FIXED]
        span = (
            f"{row['start_minute']:g}+{row['minutes']:g}"
            if row["minutes"]
            else (f"{row['start_minute']:g}+all")
        )
        mark = "best" if row["point"] == summary.best else (row["error"] or "")
        cells = [row["point"], *swept, span, _fmt(row["pnl"]), _fmt(row["fees"]),
                 _fmt(row["fills"]), _fmt(row["sharpe"]), _fmt(row["max_drawdown"], 4),
                 _fmt(row["psr"], 3), mark]  # fmt: skip
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    lines += ["", _footer(summary), ""]
    return "\n".join(lines)


_FIXED = {"point", "start_minute", "minutes", "pnl", "fees", "fills", "sharpe", "max_drawdown",
          "psr", "wall_s", "run_id", "error"}  # fmt: skip


def _footer(summary: SweepSummary) -> str:
    parts = [
        f"{summary.trials} of {summary.points} points have a defined Sharpe ratio (the trials "
        "the deflated Sharpe ratio counts)"
    ]
    if summary.threshold_pp is not None:
        parts.append(
            f"per-period Sharpe of the best {summary.best_sharpe_pp:.4g} vs "
            f"{summary.threshold_pp:.4g} expected from the best of {summary.trials} by luck"
        )
    if summary.failed:
        parts.append(f"{summary.failed} failed")
    if summary.skipped:
        parts.append(f"{summary.skipped} grid combinations skipped as invalid")
    return "; ".join(parts) + ". Sharpe: annualised; max DD: fraction of the peak."


def render_csv(summary: SweepSummary) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns(summary), lineterminator="\n")
    writer.writeheader()
    for row in summary.rows:
        writer.writerow(row)
    return out.getvalue()


def render_json(summary: SweepSummary) -> str:
    return json.dumps(summary.as_dict(), indent=2, default=str)
