"""Demo step for trading: the shipped real day through the worker, every strategy, paper exchange.

The AI arm uses the model SERVED at ``settings.serving.url`` when a server answers /ready there;
otherwise the registered ``@champion`` loaded in-process (the same Forecaster the server runs);
with neither, it stands aside (journaled) and the others still trade. Quick mode replays 8
minutes with classical strategies on 5-second bars; the full demo replays 6 hours on 1-minute bars.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from cryptoarena.config import Settings
from rich.console import Console

logger = logging.getLogger(__name__)

QUICK_MINUTES, FULL_MINUTES = 8.0, 360.0


async def _served(url: str) -> bool:
    from cryptoarena.serving.client import ForecastClient

    async with ForecastClient(url, timeout_s=0.5) as client:
        return await client.health()


def _forecast_source(settings: Settings, console: Console) -> tuple[Any, str]:
    """(source, description): the server if it is up, else the champion in-process, else None."""
    url = settings.serving.url
    if asyncio.run(_served(url)):
        from cryptoarena.serving.client import ForecastClient

        return ForecastClient(url, timeout_s=1.0, max_age_s=2.5), f"the model served at {url}"
    try:
        from cryptoarena.model.registry import CHAMPION, get_alias_version, load_forecaster
        from cryptoarena.trading.local_forecasts import LocalForecasts

        name, uri = settings.serving.model_name, settings.mlflow.tracking_uri
        version = get_alias_version(name, CHAMPION, tracking_uri=uri)
        if version is None:
            return None, "no @champion registered: the AI arm stands aside"
        forecaster = load_forecaster(f"models:/{name}@{CHAMPION}", tracking_uri=uri)
        return LocalForecasts(forecaster), f"models:/{name}@{CHAMPION} (v{version}), in-process"
    except Exception as exc:  # the demo goes on without the AI arm, and says why
        logger.warning("no forecaster for the demo: %s", exc)
        return None, f"no forecaster ({type(exc).__name__}): the AI arm stands aside"


def demo_step(settings: Settings, console: Console, quick: bool) -> str:
    from cryptoarena.trading.arena_config import all_strategies_config
    from cryptoarena.trading.journal import Journal
    from cryptoarena.trading.report import build_report
    from cryptoarena.trading.results.render import render_table
    from cryptoarena.trading.session import ExchangeKind, SessionOptions, Source, run_session

    source, described = _forecast_source(settings, console)
    minutes = QUICK_MINUTES if quick else FULL_MINUTES
    config = all_strategies_config(
        bar_size="5s" if quick else "1m", equity_every_s=5.0 if quick else 15.0
    )
    options = SessionOptions(
        source=Source.REPLAY,
        exchange=ExchangeKind.PAPER,
        run_id=f"demo-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}",
        start_minute=60.0,
        minutes=minutes,
        speed=None,
        forecast_source=source,
    )
    console.print(
        f"replaying {minutes:.0f} min of the shipped real BTCUSDT day through the worker: "
        f"{len(config.strategies)} strategies, paper exchange; AI arm: {described}"
    )
    if source is None:
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
    best = rows[0] if rows else None
    return (
        f"trading: {len(rows)} strategies traded {minutes:.0f} min of real tape in {elapsed:.0f} s "
        f"({result.orders} orders, {result.fills} fills, {preds} forecasts); "
        f"best {best.name if best else '—'} {best.pnl if best else 0:+.2f} USDT; "
        f"AI vs classical: {report.verdict.sentence}"
    )
