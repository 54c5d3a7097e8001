"""PNG plots for the Markdown report: equity curves, drawdowns, and the AI-vs-classical
comparison (matplotlib's Agg backend: no display, no network)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from cryptoarena.trading.results.model import Comparison, RunReport
from cryptoarena.trading.results.stats import drawdown_curve

if TYPE_CHECKING:
    from cryptoarena.trading.results.source import Curve
    from matplotlib.patches import Patch

logger = logging.getLogger(__name__)

MAX_POINTS = 2000  # per curve: a day of 5 s snapshots is 17,280; the eye needs far fewer
_STYLE = {"ai": "-", "classical": "--", "reference": ":"}


def _thin(ts: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    step = max(1, len(ts) // MAX_POINTS)
    hours = (ts[::step] - ts[0]) / 3.6e12
    return hours, y[::step]


def write_plots(
    report: RunReport, curves: Mapping[str, Curve], out_dir: Path
) -> list[tuple[str, str]]:
    """Writes the PNGs into ``out_dir``; returns (title, file name) pairs in reading order."""
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    families = {r.name: r.family for r in report.strategies}
    halted = {r.name for r in report.strategies if r.halted is not None}
    written: list[tuple[str, str]] = []
    title_span = (
        "complete"
        if report.complete
        else "INCOMPLETE"
        if report.complete is False
        else "completeness unknown"
    )

    fig, ax = plt.subplots(figsize=(10, 5))
    for name in families:
        curve = curves.get(name)
        if curve is None or len(curve.ts_ns) == 0:
            continue
        x, y = _thin(curve.ts_ns, curve.equity - curve.equity[0])
        label = f"{name} (HALTED)" if name in halted else name
        ax.plot(x, y, _STYLE.get(families[name], "-"), label=label, linewidth=1.2)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set(xlabel="hours into the run", ylabel="P&L after fees (USDT)",
           title=f"Equity · run {report.run_id} ({title_span})")  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_dir / "equity.png", dpi=100)
    plt.close(fig)
    written.append(("Equity curves", "equity.png"))

    fig, ax = plt.subplots(figsize=(10, 4))
    for name in families:
        curve = curves.get(name)
        if curve is None or len(curve.ts_ns) == 0:
            continue
        x, y = _thin(curve.ts_ns, -100.0 * drawdown_curve(curve.equity))
        ax.plot(x, y, _STYLE.get(families[name], "-"), label=name, linewidth=1.0)
    ax.set(xlabel="hours into the run", ylabel="drawdown (%)", title="Drawdowns")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_dir / "drawdowns.png", dpi=100)
    plt.close(fig)
    written.append(("Drawdowns", "drawdowns.png"))

    comps = report.verdict.comparisons
    if comps:
        fig, ax = plt.subplots(figsize=(10, 0.4 * len(comps) + 1.5))
        labels = [f"{c.ai} − {c.versus}" for c in comps]
        means = np.array([c.mean_diff_bp_day for c in comps])
        err = np.array([[c.mean_diff_bp_day - c.ci[0] for c in comps],
                        [c.ci[1] - c.mean_diff_bp_day for c in comps]])  # fmt: skip
        colors = [_COMPARISON_COLOR[_comparison_side(c.ci)] for c in comps]
        y = np.arange(len(comps))
        ax.barh(y, means, xerr=np.maximum(err, 0.0), color=colors, capsize=3)
        ax.set_yticks(y, labels, fontsize=7)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set(xlabel=f"mean return difference (bp of capital per day), {report.verdict.confidence:.0%} CI",
               title="AI vs classical (paired moving-block bootstrap)")  # fmt: skip
        ax.invert_yaxis()
        ax.legend(handles=comparison_legend(comps), fontsize=7, loc="best")
        fig.tight_layout()
        fig.savefig(out_dir / "comparison.png", dpi=100)
        plt.close(fig)
        written.append(("AI vs classical", "comparison.png"))
    return written


# What a bar's colour says: its interval wholly above zero, wholly below, or across it.
_COMPARISON_COLOR = {"ahead": "tab:green", "behind": "tab:red", "unclear": "tab:grey"}
_COMPARISON_LABEL = {
    "ahead": "AI ahead (interval above 0)",
    "behind": "AI behind (interval below 0)",
    "unclear": "no clear difference (interval spans 0)",
}


def _comparison_side(ci: tuple[float, float]) -> str:
    return "ahead" if ci[0] > 0 else "behind" if ci[1] < 0 else "unclear"


def comparison_legend(comps: Sequence[Comparison]) -> list[Patch]:
    """One legend entry per colour the comparison plot uses (the red vs grey had none)."""
    from matplotlib.patches import Patch

    sides = dict.fromkeys(_comparison_side(c.ci) for c in comps)
    return [Patch(color=_COMPARISON_COLOR[s], label=_COMPARISON_LABEL[s]) for s in sides]
