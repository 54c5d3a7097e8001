"""Where a session's forecasts come from, and what the model behind them has already seen.

:class:`LocalForecasts` is an in-process forecast source: a loaded Forecaster behind the same
calls as ForecastClient (the demo and backtests use it when no model server runs). Inference runs
in a worker thread, so the event loop (and the trading hot path) never waits on torch.

:func:`trained_span` reads, from the MLflow run that trained a model, the span of the data it was
trained AND validated on (its ``data.first`` tag to its ``data.val_last`` tag plus the forecast
horizon): a replay that holds none of those bars is out of sample for that model.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from cryptoarena.clock import Clock, LiveClock
from cryptoarena.config import Settings
from cryptoarena.data.records import NS_PER_S
from cryptoarena.serving.client import Forecast, ForecastCapabilities, ForecastUnavailable

logger = logging.getLogger(__name__)


def make_forecast(
    symbol: str, bar_ts_ns: int, close: float, path: Any, info: Any, received_ns: int
) -> Forecast:
    """A model's log-return path from the bar at ``bar_ts_ns`` (closing at ``close``) as the
    Forecast the server would have answered."""
    returns = tuple(float(x) for x in path)
    return Forecast(
        symbol=symbol,
        bar_ts_ns=bar_ts_ns,
        log_returns=returns,
        prices=tuple(close * math.exp(r) for r in returns),
        model_name=str(info.name),
        model_version=str(info.version),
        received_ns=received_ns,
    )


class LocalForecasts:
    # Inference in a worker thread; a backtest may batch it (forecasts use past bars only).
    capabilities = ForecastCapabilities(waits=True, batches=True)

    def __init__(self, forecaster: Any, *, symbol: str = "BTCUSDT", clock: Clock | None = None):
        self.forecaster = forecaster
        self.symbol = symbol
        self.clock: Clock = clock or LiveClock()
        self.info = forecaster.info
        self.model_run_id: str | None = self.info.run_id

    def precompute(
        self, bars: pd.DataFrame, *, window: int, clock: Clock | None = None
    ) -> PrecomputedForecasts:
        """Every forecast over ``bars`` computed before the replay, served by bar time."""
        return PrecomputedForecasts(self.forecaster, bars, window=window, clock=clock)

    async def health(self) -> bool:
        return True

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        need = int(self.info.min_bars)
        if len(bars) < need:
            raise ForecastUnavailable(f"need {need} bars, have {len(bars)}")
        window = bars.iloc[-need:]
        path = await asyncio.to_thread(self.forecaster.predict, [window])
        close = float(window["close"].iloc[-1])
        return make_forecast(
            symbol, int(window["ts"].iloc[-1]), close, path[0], self.info, self.clock.now_ns()
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
    from cryptoarena.model.champions import CHAMPION
    from cryptoarena.model.registry_file import alias_absent

    name, uri = settings.serving.model_name, settings.mlflow.tracking_uri
    # Surely none (no database, or no alias row in it): said without importing MLflow (~2 s).
    absent = alias_absent(uri, name, CHAMPION)
    if absent is not None:
        return ChampionChoice(None, absent)
    from cryptoarena.model.registry import get_alias_version, load_forecaster

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


@dataclass(frozen=True)
class TrainedSpan:
    """The bars a model was trained and validated on: from ``first_ns`` (None: unknown, an older
    run that does not say; every bar before ``until_ns`` then counts as seen) to ``until_ns``
    (exclusive: the first bar after its last validation label)."""

    first_ns: int | None
    until_ns: int

    def overlaps(self, first_ns: int, last_ns: int) -> bool:
        """Whether a replay of bars ``first_ns``..``last_ns`` holds a bar the model saw: THE
        in-sample rule (a replay wholly before or after the span is out of sample)."""
        return first_ns < self.until_ns and (self.first_ns is None or last_ns >= self.first_ns)


def trained_span(tracking_uri: str, run_id: str | None, horizon_s: int = 15) -> TrainedSpan | None:
    """The span of the data a model was trained and validated on (ns), from its training run's
    tags; None when the run or its validation end is missing."""
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
    first = tags.get("data.first")
    # The last validation anchor's label reaches horizon_s further; its bar closes 1 s later.
    return TrainedSpan(
        int(np.datetime64(first, "ns").astype(np.int64)) if first else None,
        anchor + (horizon_s + 1) * NS_PER_S,
    )


def replay_bars(trades: pd.DataFrame, symbol: str | None = None) -> pd.DataFrame:
    """The 1-second bars a worker builds from ``trades`` in a replay, in order: the same
    :class:`BarBuilder`, advanced second by second as the worker's ticks do (quiet seconds
    give empty bars), so a forecast computed on them sees exactly what the pump would send."""
    from cryptoarena.data.bar_builder import BarBuilder
    from cryptoarena.data.records import BAR_COLUMNS

    if symbol is not None and "symbol" in trades.columns:
        trades = trades[trades["symbol"] == symbol]
    ts = trades["ts"].to_numpy(np.int64)
    px = trades["price"].to_numpy(np.float64)
    qty = trades["size"].to_numpy(np.float64)
    side = trades["side"].to_numpy(np.int8)
    builder = BarBuilder(NS_PER_S)
    bars: list[Any] = []
    seconds = ts // NS_PER_S
    starts = np.flatnonzero(np.r_[True, seconds[1:] != seconds[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    for i, j in zip(starts.tolist(), ends.tolist(), strict=True):
        bars.extend(builder.advance(int(seconds[i]) * NS_PER_S))
        builder.add_many(ts[i:j], px[i:j], qty[i:j], side[i:j])
    bars.extend(builder.advance((int(seconds[-1]) + 1) * NS_PER_S) if len(ts) else [])
    return pd.DataFrame(
        {name: [getattr(b, name) for b in bars] for name in BAR_COLUMNS}, columns=list(BAR_COLUMNS)
    )


class PrecomputedForecasts:
    """A backtest's forecasts computed for the whole replay before it starts, in large batches
    (features once over the whole bar series, the network on thousands of windows per call),
    served by bar time. Forecasts depend only on past bars, so these equal the lock-step ones
    (:class:`LocalForecasts` per bar) up to float32 rounding of batched inference."""

    # A lookup: a request never waits, so the backtest can be driven synchronously.
    capabilities = ForecastCapabilities(waits=False, lookup=True)

    def __init__(
        self,
        forecaster: Any,
        bars: pd.DataFrame,
        *,
        window: int,
        clock: Clock | None = None,
        batch: int = 8192,
    ) -> None:
        self.info = forecaster.info
        self.model_run_id: str | None = self.info.run_id
        self.clock: Clock = clock or LiveClock()
        self._need = int(self.info.min_bars)
        self._window = window
        ts = bars["ts"].to_numpy(np.int64)
        closes = bars["close"].to_numpy(np.float64)
        anchors = np.arange(self._need - 1, len(bars), dtype=np.int64)
        paths = [np.empty((0, int(self.info.horizon)), np.float32)]
        for k in range(0, len(anchors), batch):
            # The pump sends at most ``window`` bars: the features see only that much history.
            chunk = anchors[k : k + batch]
            lo = max(0, int(chunk[0]) - window + 1)
            paths.append(forecaster.predict_bars(bars.iloc[lo : int(chunk[-1]) + 1], chunk - lo))
        self._paths = np.concatenate(paths)
        self._index = {int(t): i for i, t in enumerate(ts[anchors].tolist())}
        self._close = closes[anchors]
        self.computed = len(anchors)

    async def health(self) -> bool:
        return True

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        return self.forecast_for(symbol, len(bars), int(bars["ts"].iloc[-1]) if len(bars) else 0)

    def forecast_for(self, symbol: str, n_bars: int, last: int) -> Forecast:
        """The forecast from the bar at ``last`` given ``n_bars`` bars: a lookup (the pump
        needs no frame of bars for it)."""
        need = self._need
        if n_bars < need:
            raise ForecastUnavailable(f"need {need} bars, have {n_bars}")
        i = self._index.get(last)
        if i is None:
            raise ForecastUnavailable(f"no precomputed forecast for bar {last}")
        close = float(self._close[i])
        return make_forecast(symbol, last, close, self._paths[i], self.info, self.clock.now_ns())

    async def aclose(self) -> None:
        return None


if TYPE_CHECKING:  # what they declare, checked by the type checker
    from cryptoarena.trading.forecasts.pump import ForecastSource, LookupSource

    _local: type[ForecastSource] = LocalForecasts
    _precomputed: type[LookupSource] = PrecomputedForecasts
