"""One report per run: JSON (everything), Markdown (the comparison tables) and plots (PNG)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from cryptoarena.model.features import BP

logger = logging.getLogger(__name__)

SECTIONS = (("test", "held-out test split"), ("second_venue", "second venue (Bitstamp)"))


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def comparison_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Rows of the model comparison table (shared by Markdown, CLI and demo)."""
    rows = []
    for name, r in results.items():
        rows.append(
            [
                name,
                _fmt(r["mae_bp"]),
                _fmt(r["rmse_bp"]),
                _fmt(r["skill"], 4),
                _fmt(r["dir_acc_big"]) + f" (n={r['n_big_moves']})"
                if r["n_big_moves"]
                else "– (no move > fees)",
                _fmt(r["dm_stat"], 2),
                _fmt(r["dm_p"], 4) if name != "persistence" else "–",
                f"{r.get('n_signals', 0)}"
                + (f" ({_fmt(r.get('signal_net_bp'), 2)} bp)" if r.get("n_signals") else ""),
            ]
        )
    return rows


HEADER = [
    "model", "MAE bp", "RMSE bp", "skill", "dir. acc > fees", "DM stat", "DM p",
    "signals > fees (net)",
]  # fmt: skip


CV_HEADER = ["model", "n", "MAE bp", "RMSE bp", "skill", "skill 95% CI", "DM p (HLN)",
             "DM p (HAC)", "sig. better"]  # fmt: skip
CV_SECTIONS = (("cv", "cross-validated"), ("second_venue_cv", "cross-validated, second venue"))


def _p(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):.2g}" if float(value) < 1e-3 else f"{float(value):.3f}"


def cv_pooled_rows(cv: dict[str, Any]) -> list[list[str]]:
    """Pooled out-of-sample rows: skill with its bootstrap CI and both DM p-values."""
    rows = []
    for name, r in cv["pooled"].items():
        if not r.get("n"):
            rows.append([name, "0", "–", "–", "–", "–", "–", "–", "not scored"])
            continue
        ci = r.get("skill_ci95")
        rows.append(
            [
                name,
                f"{r['n']:,}",
                _fmt(r["mae_bp"]),
                _fmt(r["rmse_bp"]),
                _fmt(r["skill"], 4) if name != "persistence" else "0",
                f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci and math.isfinite(ci[0]) else "–",
                _p(r.get("dm_p")),
                _p(r.get("dm_hac_p")),
                ("yes" if r.get("significant") else "no") if name != "persistence" else "–",
            ]
        )
    return rows


def cv_head(cv: dict[str, Any]) -> str:
    """Scheme, folds (and how many were scored: walk-forward's first fold only trains), purge."""
    k, scored = cv["k"], len(cv["folds"])
    folds = f"{k} folds" if scored == k else f"{k} folds, {scored} scored"
    return f"{cv['scheme']}, {folds}, purge/embargo {cv['gap']} bars"


def cv_fold_rows(cv: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per-fold skill of every model (header, rows)."""
    names = list(cv["pooled"])
    header = ["fold", "from", "to", "n", *[f"{m} skill" for m in names]]
    rows = []
    for f in cv["folds"]:
        cells = [str(f["fold"]), f["first"], f["last"], f"{f['n']:,}"]
        for m in names:
            r = f["models"].get(m)
            if r is None:
                cells.append("–")
                continue
            partial = "" if r["n"] == f["n"] else f" (n={r['n']:,})"
            cells.append(_fmt(r["skill"], 4) + partial)
        rows.append(cells)
    return header, rows


def cv_pair_rows(cv: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"{r['a']} vs {r['b']}",
            f"{r['n']:,}",
            _fmt(r["dm_stat"], 2),
            _p(r["dm_p"]),
            _p(r["dm_hac_p"]),
        ]
        for r in cv.get("pairwise", [])
    ]


def coverage_lines(cv: dict[str, Any]) -> list[str]:
    """One line per model with quantile heads: how often outcomes fell below each quantile."""
    out = []
    for name, r in cv["pooled"].items():
        if "band_coverage" in r:
            lo, hi = r["band"]
            each = ", ".join(f"q{q}: {v:.3f}" for q, v in r["quantile_coverage"].items())
            out.append(
                f"{name}: the {lo:g}–{hi:g} band holds {r['band_coverage']:.3f} of outcomes "
                f"(nominal {hi - lo:.2f}); share at or below each quantile: {each}"
            )
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def cv_markdown(cv: dict[str, Any], title: str) -> list[str]:
    lines = [
        f"## {title}: {cv_head(cv)}",
        "",
        f"Pooled over the scored folds (DM vs persistence; significant = lower loss at "
        f"p < {cv['alpha']}, HLN):",
        "",
        *_table(CV_HEADER, cv_pooled_rows(cv)),
        "",
    ]
    coverage = coverage_lines(cv)
    if coverage:
        lines += ["Quantile coverage (pooled):", "", *[f"- {c}" for c in coverage], ""]
    header, rows = cv_fold_rows(cv)
    lines += ["Per fold:", "", *_table(header, rows), ""]
    if cv.get("pairwise"):
        lines += ["Pairwise (negative statistic = first model better):", ""]
        lines += _table(["pair", "n", "DM stat", "DM p (HLN)", "DM p (HAC)"], cv_pair_rows(cv))
        lines.append("")
    return lines


def markdown(report: dict[str, Any]) -> str:
    data = report.get("data", {})
    lines = [
        f"# Forecaster run {report.get('run_id', '')}",
        "",
        f"Data: {data.get('label', '')} {data.get('first', '')} → {data.get('last', '')}, "
        f"{data.get('bars', '')} bars, hash {data.get('hash', '')}. "
        f"Test: {data.get('test_first', '')} → {data.get('test_last', '')} "
        f"({data.get('test_n', '')} windows). Headline horizon: "
        f"{report.get('config', {}).get('horizon', 15)} s.",
        "",
    ]
    for key, title in SECTIONS:
        if key not in report:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(HEADER) + " |",
                  "|" + "---|" * len(HEADER)]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(report[key])]
        lines.append("")
    for key, title in CV_SECTIONS:
        if key in report:
            lines += cv_markdown(report[key], title)
    gate = report.get("gate")
    if gate:
        lines += [f"Gate: {gate['reason']}.", ""]
    return "\n".join(lines)


def _plots(
    venues: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], out: Path, n_points: int = 600
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for venue, (actual, preds) in venues.items():
        fig, ax = plt.subplots(figsize=(10, 4))
        sl = slice(0, min(n_points, len(actual)))
        x = np.arange(sl.stop)
        ax.plot(x, actual[sl, -1] * BP, color="black", lw=0.8, label="actual")
        for name, pred in preds.items():
            if name != "persistence":
                ax.plot(x, pred[sl, -1] * BP, lw=0.9, label=name)
        ax.set_xlabel("seconds into the split")
        ax.set_ylabel(f"{actual.shape[1]} s log return (bp)")
        ax.set_title(f"forecast vs actual, {venue}")
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        path = out / f"forecast_vs_actual_{venue}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)

        fig, ax = plt.subplots(figsize=(6, 4))
        horizons = np.arange(1, actual.shape[1] + 1)
        base = np.mean(actual**2, axis=0)
        for name, pred in preds.items():
            with np.errstate(divide="ignore", invalid="ignore"):
                skill = 1 - np.mean((pred - actual) ** 2, axis=0) / base
            ax.plot(horizons, skill, marker="o", ms=3, label=name)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("horizon (s)")
        ax.set_ylabel("skill vs persistence")
        ax.set_title(f"skill by horizon, {venue}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"skill_by_horizon_{venue}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(
    report: dict[str, Any],
    venues: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
    out: Path,
) -> list[Path]:
    """report.json, report.md and the plots into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "report.json", out / "report.md"]
    files[0].write_text(json.dumps(report, indent=2, default=float, allow_nan=True))
    files[1].write_text(markdown(report))
    files += _plots(venues, out)
    return files
