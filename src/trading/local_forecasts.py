"""Where a session's forecasts come from, and what the model behind them has already seen.

:class:`LocalForecasts` is an in-process forecast source: a loaded Forecaster behind the same
calls as ForecastClient (the demo and backtests use it when no model server runs). Inference runs
in a worker thread, so the event loop (and the trading hot path) never waits on torch.

:func:`valid_until_ns` reads, from the MLflow run that trained a model, the end of the data it
was trained AND validated on (its ``data.val_last`` tag plus the forecast horizon): bars after it
are out of sample for that model.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.clock import Clock, LiveClock
from cryptoarena.config import Settings
from cryptoarena.data.records import NS_PER_S
from cryptoarena.serving.client import Forecast, ForecastUnavailable

logger = logging.getLogger(__name__)


class LocalForecasts:
    def __init__(self, forecaster: Any, *, symbol: str = "BTCUSDT", clock: Clock | None = None):
        self.forecaster = forecaster
        self.symbol = symbol
        self.clock: Clock = clock or LiveClock()
        self.info = forecaster.info

    async def health(self) -> bool:
        return True

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        need = int(self.info.min_bars)
        if len(bars) < need:
            raise ForecastUnavailable(f"need {need} bars, have {len(bars)}")
        window = bars.iloc[-need:]
        path = await asyncio.to_thread(self.forecaster.predict, [window])
        returns = tuple(float(x) for x in path[0])
        close = float(window["close"].iloc[-1])
        return Forecast(
            symbol=symbol,
            bar_ts_ns=int(window["ts"].iloc[-1]),
            log_returns=returns,
            prices=tuple(close * math.exp(r) for r in returns),
            model_name=str(self.info.name),
            model_version=str(self.info.version),
            received_ns=self.clock.now_ns(),
        )

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class ChampionChoice:
    """The in-process champion (``source`` None: there is none, ``described`` says why)."""

    source: LocalForecasts | None
    described: str
    run_id: str | None = None


def load_champion(settings: Settings, clock: Clock | None = None) -> ChampionChoice:
    """The registered ``@champion`` loaded in-process (the same Forecaster the server runs)."""
    from cryptoarena.model.registry import CHAMPION, get_alias_version, load_forecaster

    name, uri = settings.serving.model_name, settings.mlflow.tracking_uri
    try:
        version = get_alias_version(name, CHAMPION, tracking_uri=uri)
        if version is None:
            return ChampionChoice(None, f"no models:/{name}@{CHAMPION} in the registry at {uri}")
        forecaster = load_forecaster(f"models:/{name}@{CHAMPION}", tracking_uri=uri)
    except Exception as exc:  # a broken registry is reported like a missing model
        return ChampionChoice(None, f"cannot load models:/{name}@{CHAMPION}: {exc}")
    return ChampionChoice(
        LocalForecasts(forecaster, clock=clock),
        f"models:/{name}@{CHAMPION} (v{version}), in-process",
        str(forecaster.info.run_id),
    )


def valid_until_ns(tracking_uri: str, run_id: str | None, horizon_s: int = 15) -> int | None:
    """The end of the data a model was trained and validated on (ns), from its training run's
    tags; None when the run or the tag is missing."""
    if not run_id:
        return None
    from cryptoarena.model.tracking import tracking_context

    try:
        with tracking_context(tracking_uri) as client:
            tags = client.get_run(run_id).data.tags
    except Exception as exc:
        logger.warning("cannot read the training span of run %s: %s", run_id, exc)
        return None
    last = tags.get("data.val_last")
    if not last:
        return None
    anchor = int(np.datetime64(last, "ns").astype(np.int64))
    # The last validation anchor's label reaches horizon_s further; its bar closes 1 s later.
    return anchor + (horizon_s + 1) * NS_PER_S
