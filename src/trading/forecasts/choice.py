"""Which model a replay will use, before it starts, and where its out-of-sample part begins.

A backtest with the AI arm trades only bars after the model's validation end (the session
refuses a span that ends before it). `arena demo` and `arena backtest` without --start-minute
start the replay a warm-up before that end, so `--minutes N` means N minutes of bars the model
never saw, whatever day the model was trained on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptoarena.config import Settings
from cryptoarena.data.records import NS_PER_S

logger = logging.getLogger(__name__)

# Replayed before the first out-of-sample bar: the longest classical strategy's warm-up and the
# forecast window of 256 one-second bars both fit in it.
WARMUP_MINUTES = 20.0


@dataclass(frozen=True)
class ForecastChoice:
    """The forecasts a replay will use: ``source`` to hand to the session (None: the server at
    ``served_at``, which the session finds itself, or no model), what they are, and the model's
    validation end (ns)."""

    source: Any
    described: str
    valid_until_ns: int | None
    served_at: str | None = None


def choose_forecasts(settings: Settings, url: str | None = None) -> ForecastChoice:
    """The model served at ``url`` (default: settings.serving.url) if it answers, else the
    ``@champion`` loaded in-process (returned as ``source`` so it is loaded once), else none."""
    from cryptoarena.trading.engine.session import _served_model
    from cryptoarena.trading.forecasts.local import load_champion, valid_until_ns

    url = url or settings.serving.url
    uri = settings.mlflow.tracking_uri
    served = asyncio.run(_served_model(url))
    if served is not None:
        until = valid_until_ns(uri, str(served.get("run_id") or ""))
        return ForecastChoice(None, f"the model served at {url}", until, served_at=url)
    champion = load_champion(settings)
    if champion.source is None:
        return ForecastChoice(None, champion.described, None)
    return ForecastChoice(champion.source, champion.described, valid_until_ns(uri, champion.run_id))


def minute_of(settings: Settings, ts_ns: int, replay_file: Path | None = None) -> float:
    """Minutes from the replay file's first trade (default: the shipped real day) to ``ts_ns``."""
    from cryptoarena.data.loaders import load_trades
    from cryptoarena.data.samples import TARDIS_DAY, sample_path

    path = replay_file or sample_path(TARDIS_DAY, settings.data.sample_dir)
    trades, _ = load_trades(Path(path))
    return (ts_ns - int(trades["ts"].iloc[0])) / (60 * NS_PER_S)
