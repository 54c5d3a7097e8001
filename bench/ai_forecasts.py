"""The AI arm in a backtest: lock-step in-process inference per bar vs forecasts batched
before the replay (issue #12 item 1).

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.ai_forecasts [--minutes M]

Trains the tiny LSTM on the first two hours of the shipped Binance day into a temporary MLflow
registry, then replays M minutes of the shipped Tardis day from 02:10 (after its data) with the
AI arm alone on the paper exchange and a journal that keeps nothing, twice: forecasts from
``LocalForecasts`` (one inference per closed 1 s bar, as lock-step does) and from
``PrecomputedForecasts`` (every forecast computed in batches first; its time is included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from cryptoarena.clock import SimClock
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.data.samples import TARDIS_DAY, sample_path
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.forecasts.local import LocalForecasts, PrecomputedForecasts, replay_bars

from bench.trading import NullJournal

CONFIG = parse_arena_config(
    {"strategy": [{"name": "ai", "kind": "ai_forecast", "params": {"margin_bps": 0}}]}
)


async def run(trades: pd.DataFrame, source: Any) -> tuple[float, int]:
    clock = SimClock(int(trades["ts"].iloc[0]))
    exchange = PaperExchange(PaperExchangeConfig(initial_balance=Decimal(10_000)), clock=clock)
    journal = NullJournal()
    worker = Worker(CONFIG, feed=ReplayFeed(trades, speed=None), exchange=exchange,
                    journal=journal, clock=clock, run_id="bench-ai", forecasts=source)  # fmt: skip
    started = time.perf_counter()
    await worker.run()
    assert worker.pump is not None
    return time.perf_counter() - started, worker.pump.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    import torch
    from cryptoarena.model.datasets import load_bars
    from cryptoarena.model.registry import load_forecaster
    from cryptoarena.model.train import train_tiny

    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, torch threads 1")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        train_tiny(uri, "bench-15s", load_bars(max_bars=7200), promote=True)
        forecaster = load_forecaster("models:/bench-15s@champion", tracking_uri=uri)
    day, _ = load_trades(sample_path(TARDIS_DAY))
    t0 = int(day["ts"].iloc[0]) + 7800 * NS_PER_S
    t1 = t0 + int(args.minutes * 60 * NS_PER_S)
    trades = day[(day["ts"] >= t0) & (day["ts"] < t1)].reset_index(drop=True)
    lock_s, lock_n = asyncio.run(run(trades, LocalForecasts(forecaster)))
    print(f"lock-step (one inference per bar): {args.minutes:.0f} min replayed in {lock_s:.1f} s, "
          f"{lock_n:,} forecasts")  # fmt: skip
    started = time.perf_counter()
    batched = PrecomputedForecasts(forecaster, replay_bars(trades), window=256)
    pre_s = time.perf_counter() - started
    run_s, n = asyncio.run(run(trades, batched))
    print(f"batched before the replay: {batched.computed:,} forecasts in {pre_s:.1f} s + replay "
          f"{run_s:.1f} s = {pre_s + run_s:.1f} s ({n:,} served); "
          f"{lock_s / (pre_s + run_s):.1f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
