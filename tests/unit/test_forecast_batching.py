"""A backtest batches the forecasts of a source that declares it can (issue #21 item 4: the
session chooses by the source's declared capabilities, not by its class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from cryptoarena.clock import SimClock
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.samples import NAUTILUS_TRADES, sample_path
from cryptoarena.serving.client import ForecastCapabilities
from cryptoarena.trading.config import load_arena_config
from cryptoarena.trading.engine.session import ForecastPlan, batch_forecasts
from cryptoarena.trading.forecasts.local import LocalForecasts

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "arena.example.toml"


class _Looked:
    capabilities = ForecastCapabilities(waits=False, lookup=True)
    model_run_id = None

    def __init__(self, bars: pd.DataFrame, window: int) -> None:
        self.computed = len(bars)
        self.window = window


class _Batching:
    """Any source declaring ``batches`` (not a LocalForecasts) is precomputed."""

    capabilities = ForecastCapabilities(waits=True, batches=True)
    model_run_id = "run-1"

    def precompute(self, bars: pd.DataFrame, *, window: int, clock: Any) -> _Looked:
        return _Looked(bars, window)


class _Served:
    capabilities = ForecastCapabilities()  # a model server: may wait, cannot batch
    model_run_id = None


def test_a_source_that_declares_batches_is_precomputed_and_others_are_left_alone() -> None:
    trades = load_trades(sample_path(NAUTILUS_TRADES))[0]
    config = load_arena_config(CONFIG)
    clock = SimClock()
    plan = batch_forecasts(ForecastPlan(_Batching(), "in-process"), trades, config, clock)  # type: ignore[arg-type]
    assert isinstance(plan.source, _Looked) and plan.source.computed > 0
    assert plan.source.window == config.arena.forecast_window
    assert plan.described == "in-process, batched"
    served = ForecastPlan(_Served(), "served")  # type: ignore[arg-type]
    assert batch_forecasts(served, trades, config, clock) is served
    none = ForecastPlan(None, "none")
    assert batch_forecasts(none, trades, config, clock) is none


def test_the_in_process_model_declares_that_it_batches() -> None:
    assert LocalForecasts.capabilities.batches and not LocalForecasts.capabilities.lookup
