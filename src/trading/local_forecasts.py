"""An in-process forecast source: a loaded Forecaster behind the same calls as ForecastClient.

For the demo and backtests when no model server runs. Inference runs in a worker thread, so the
event loop (and the trading hot path) never waits on torch.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pandas as pd
from cryptoarena.clock import Clock, LiveClock
from cryptoarena.serving.client import Forecast, ForecastUnavailable


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
