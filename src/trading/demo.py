"""Demo step for trading: the shipped real day through the worker, every strategy, paper exchange.

The AI arm uses the model SERVED at ``settings.serving.url`` when a server answers /ready there;
otherwise the registered ``@champion`` loaded in-process (the same Forecaster the server runs);
with neither, it stands aside (journaled) and the others still trade. The replay starts after
the model's validation end: every strategy trades bars the model never saw (the bars before
only warm them up). Quick mode trades 8 minutes with classical strategies on 5-second bars; the
full demo trades up to 6 hours on 1-minute bars. The AI arm runs twice, as a taker and as a maker
(``ai_taker``, ``ai_maker``), each with a threshold the demo's model actually reaches.
"""

from __future__ import annotations

import asyncio
import logging
import time

from cryptoarena.config import Settings
from cryptoarena.trading.forecasts.choice import WARMUP_MINUTES, choose_forecasts, minute_of
from rich.console import Console

logger = logging.getLogger(__name__)

QUICK_MINUTES, FULL_MINUTES = 8.0, 360.0
# Replayed before the first traded bar: the strategies' warm-up (the longest classical one, and
# the forecast window of 256 one-second bars).
QUICK_WARMUP_MINUTES = 5.0  # the full demo's is choice.WARMUP_MINUTES
DAY_MINUTES = 1440.0
# The quick demo's tiny model forecasts smaller moves (at most ~0.3 bps) than the full demo's
# champion (median 0.18, 95th percentile 0.46 bps): its AI arms get lower thresholds than the
# example config's (trading.config.AI_THRESHOLDS_BPS).
QUICK_AI_THRESHOLDS_BPS = {"taker": 0.15, "maker": 0.08}


def _start_minute(settings: Settings, until: int | None, default: float, warmup: float) -> float:
    """Where the replay starts: ``default``, or ``warmup`` minutes before the model's validation
    end; the session trades only after that end (bars the model never saw)."""
    if until is None:
        return default
    return max(default, minute_of(settings, until) - warmup)


def demo_step(settings: Settings, console: Console, quick: bool) -> str:
    from cryptoarena.trading.config import all_strategies_config
    from cryptoarena.trading.engine.session import ExchangeKind, SessionOptions, Source, run_session
    from cryptoarena.trading.journal import Journal
    from cryptoarena.trading.results.render import render_table, sample_line
    from cryptoarena.trading.results.report import build_report

    choice = choose_forecasts(settings)
    source, described, until = choice.source, choice.described, choice.valid_until_ns
    # With a model: its warm-up before the validation end, then the minutes traded.
    warmup = 0.0 if until is None else QUICK_WARMUP_MINUTES if quick else WARMUP_MINUTES
    start = _start_minute(settings, until, 60.0, warmup)
    minutes = warmup + (QUICK_MINUTES if quick else FULL_MINUTES)
    minutes = min(minutes, max(DAY_MINUTES - start, QUICK_MINUTES))
    config = all_strategies_config(
        bar_size="5s" if quick else "1m",
        ai_thresholds_bps=QUICK_AI_THRESHOLDS_BPS if quick else None,
        equity_every_s=5.0 if quick else 15.0,
    )
    options = SessionOptions(
        source=Source.REPLAY,
        exchange=ExchangeKind.PAPER,
        run_id=f"demo-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}",
        start_minute=start,
        minutes=minutes,
        speed=None,
        forecast_source=source,
    )
    no_model = source is None and choice.served_at is None
    unseen = (
        "" if no_model else " (trading only after the model's validation end: bars it never saw)"
    )
    aside = "; the AI arm stands aside (journaled), the others trade" if no_model else ""
    console.print(
        f"replaying {minutes:.0f} min of the shipped real BTCUSDT day from minute {start:.0f}"
        f"{unseen} through the worker: {len(config.strategies)} strategies, paper exchange; "
        f"AI arm: {described}{aside}"
    )
    if no_model:
        # No forecaster: an unreachable URL makes the AI arm stand aside, journaled.
        options = SessionOptions(**{**options.__dict__, "forecast_url": "http://127.0.0.1:9"})
    started = time.perf_counter()
    result = asyncio.run(run_session(settings, config, options, handle_signals=False))
    elapsed = time.perf_counter() - started
    with Journal.open(settings, run_id=result.run_id, readonly=True) as journal:
        report = build_report(journal, result.run_id)
        preds = journal.count("predictions", {"run_id": result.run_id})
    render_table(console, report)
    rows = report.strategies
    best = next((r for r in rows if r.rank == 1), None)  # an inactive strategy is never first
    ai = ", ".join(
        f"{r.name} {r.fills} fills ({r.pnl:+.2f} USDT)" for r in rows if r.family == "ai"
    )
    span = sample_line(report) or "no model, so no out-of-sample span"
    return (
        f"trading: {len(rows)} strategies replayed {minutes:.0f} min of real tape in "
        f"{elapsed:.0f} s ({result.orders} orders, {result.fills} fills, {preds} forecasts); "
        f"{span}; AI arms: {ai or 'none'}; "
        f"best {best.name + (' (tied)' if best.tied else '') if best else '— (none traded)'} "
        f"{best.pnl if best else 0:+.2f} USDT; "
        f"AI vs classical: {report.verdict.sentence}"
    )
