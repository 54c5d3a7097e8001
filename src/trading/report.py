"""``arena report``: the leaderboard of a run, read from the journal."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

import numpy as np
from cryptoarena.trading.stats import (
    Comparison,
    StrategyStats,
    compare_ai_vs_classical,
    strategy_stats,
)
from rich.console import Console
from rich.table import Table


def wide_console() -> Console:
    """Piped output has no terminal width: keep every column readable anyway."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def latest_run_id(journal: Any) -> str | None:
    runs = journal.find("runs", {}, sort=[("ts_ns", -1)], limit=1)
    return str(runs[0]["run_id"]) if runs else None


def leaderboard(journal: Any, run_id: str) -> tuple[list[StrategyStats], Comparison | None]:
    started = journal.find(
        "runs", {"run_id": run_id, "event": "started"}, sort=[("ts_ns", 1)], limit=1
    )
    if not started:
        raise LookupError(f"no run {run_id!r} in the journal")
    capital = float(started[0]["arena"]["capital"])
    families = {s["name"]: s["family"] for s in started[0]["strategies"]}
    curves: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in journal.find("equity", {"run_id": run_id}, sort=[("ts_ns", 1), ("seq", 1)]):
        curves[doc["strategy"]].append(doc)
    rows = [
        strategy_stats(name, families.get(name, "?"), curve, capital)
        for name, curve in curves.items()
        if curve
    ]
    rows.sort(key=lambda r: r.pnl, reverse=True)
    ai = [n for n, f in families.items() if f == "ai" and curves.get(n)]
    classical = [
        np.array([d["equity"] for d in curves[n]])
        for n, f in families.items()
        if f == "classical" and curves.get(n)
    ]
    comparison = None
    if ai and classical:
        ai_eq = np.array([d["equity"] for d in curves[ai[0]]])
        comparison = compare_ai_vs_classical(ai_eq, classical, ai_name=ai[0])
        ai_fills = int(curves[ai[0]][-1].get("fills", 0))
        if ai_fills == 0:
            # A flat AI "beating" losing classical books is not evidence about its forecasts.
            comparison = replace(
                comparison, verdict="not significant yet (the AI arm has not traded)"
            )
    return rows, comparison


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None or value != value else format(value, spec)


COMPACT = ("strategy", "family", "P&L", "fees", "fills", "win %", "max DD %")


def render(
    console: Console, run_id: str, rows: list[StrategyStats], comparison: Comparison | None
) -> None:
    table = Table(title=f"leaderboard · run {run_id} (after fees)")
    columns = {
        "#": lambda i, r: str(i),
        "strategy": lambda i, r: r.strategy,
        "family": lambda i, r: r.family,
        "P&L": lambda i, r: _fmt(r.pnl),
        "return %": lambda i, r: _fmt(r.return_pct, ".3f"),
        "fees": lambda i, r: _fmt(r.fees),
        "fills": lambda i, r: str(r.fills),
        "trips": lambda i, r: str(r.round_trips),
        "win %": lambda i, r: _fmt(None if r.win_rate is None else r.win_rate * 100, ".0f"),
        "PF": lambda i, r: _fmt(r.profit_factor),
        "Sharpe": lambda i, r: _fmt(r.sharpe, ".1f"),
        "Sortino": lambda i, r: _fmt(r.sortino, ".1f"),
        "max DD %": lambda i, r: _fmt(r.max_drawdown * 100, ".2f"),
        "exposure %": lambda i, r: _fmt(r.exposure * 100, ".0f"),
    }
    # A narrow console (piped output, a small terminal) gets the columns that matter most.
    shown = [c for c in columns if console.width >= 140 or c in COMPACT]
    for col in shown:
        table.add_column(col, justify="left" if col in ("strategy", "family") else "right")
    for i, r in enumerate(rows, start=1):
        table.add_row(*(columns[c](i, r) for c in shown))
    console.print(table)
    if comparison is not None:
        console.print(
            f"AI ({comparison.ai}) − classical mean, per snapshot: "
            f"{_fmt(comparison.mean_diff_bps, '.3f')} bps "
            f"[{_fmt(comparison.ci_low_bps, '.3f')}, {_fmt(comparison.ci_high_bps, '.3f')}] "
            f"{comparison.confidence:.0%} bootstrap CI over {comparison.periods} periods "
            f"→ {comparison.verdict}"
        )
