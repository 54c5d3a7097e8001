"""The forecast pump reads what a source declares (``capabilities``), never its shape: a lookup
source gets ``forecast_for`` with no frame of bars, any other gets ``forecast(frame)``; its
``aclose`` is part of the contract."""

from __future__ import annotations

import math

import pandas as pd
from cryptoarena.data.records import NS_PER_S, Bar
from cryptoarena.serving.client import SERVED, Forecast, ForecastCapabilities
from cryptoarena.trading.forecasts.pump import ForecastPump

T0 = 1_582_329_602 * NS_PER_S


def _forecast(symbol: str, ts: int, close: float) -> Forecast:
    rets = tuple(0.001 * (i + 1) for i in range(15))
    return Forecast(symbol, ts, rets, tuple(close * math.exp(r) for r in rets), "m", "1", 0)


class Both:
    """Has both a frame-taking ``forecast`` and a by-bar ``forecast_for``; says which to use."""

    model_run_id = None

    def __init__(self, capabilities: ForecastCapabilities) -> None:
        self.capabilities = capabilities
        self.frames: list[pd.DataFrame] = []
        self.lookups: list[tuple[int, int]] = []
        self.closed = False

    async def health(self) -> bool:
        return True

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        self.frames.append(bars)
        return _forecast(symbol, int(bars["ts"].iloc[-1]), float(bars["close"].iloc[-1]))

    def forecast_for(self, symbol: str, n_bars: int, last: int) -> Forecast:
        self.lookups.append((n_bars, last))
        return _forecast(symbol, last, 100.0)

    async def aclose(self) -> None:
        self.closed = True


async def _one_bar(source: Both) -> ForecastPump:
    pump = ForecastPump(source, "BTCUSDT", window=16, max_age_s=2.5, record=lambda k, d: "x")
    pump.on_bar(Bar(T0, 100.0, 100.0, 100.0, 100.0, 1.0, 100.0, 1, 0.5, 0.5), T0 + NS_PER_S)
    await pump.settle()
    assert pump.latest is not None and pump.problem is None
    await pump.close()
    return pump


async def test_a_source_that_does_not_declare_lookup_gets_frames() -> None:
    served = Both(SERVED)
    await _one_bar(served)
    assert len(served.frames) == 1 and served.lookups == []
    assert served.closed


async def test_a_declared_lookup_source_gets_bars_by_time_without_a_frame() -> None:
    lookup = Both(ForecastCapabilities(waits=False, lookup=True))
    await _one_bar(lookup)
    assert lookup.frames == [] and lookup.lookups == [(1, T0)]
    assert lookup.closed
