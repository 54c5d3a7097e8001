"""Trading worker throughput and tick-to-decision latency on the real Tardis day.

    .venv/bin/python -m bench.trading [--hours H] [--journal-hours J]

Replays the shipped real BTCUSDT day (137,988 trades) through the worker as a backtest (SimClock,
as fast as possible) with every strategy (six classical on 1-minute bars, buy-and-hold, the
naive forecaster, and the AI arm fed by an instant in-process forecaster so no network or model
time is counted), on the paper exchange. Two runs:

1. worker only: a journal that keeps nothing (the worker's own cost),
2. the full pipeline with the real embedded journal (SQLite, in a temp dir).

Reports trades/s, bars/s (1-second bars replayed) and the tick-to-decision latency: from a
bar-closing tick to every strategy decided, risk-checked and its order handed to the exchange
(p50/p99/max; target p99 ≤ 1 ms excluding network).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.data.samples import TARDIS_DAY, sample_path
from cryptoarena.serving.client import Forecast, ForecastCapabilities, ForecastUnavailable
from cryptoarena.trading.config import all_strategies_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig


class InstantForecasts:
    """A forecaster with no cost: the last 15 s drift continued (keeps the AI arm busy)."""

    # In-process, instant: the backtest can be driven synchronously.
    capabilities = ForecastCapabilities(waits=False)
    model_run_id = None

    async def health(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        close = bars["close"].to_numpy()
        if len(close) < 16:
            raise ForecastUnavailable("warming up")
        drift = math.log(close[-1] / close[-16]) / 15
        rets = tuple(drift * (i + 1) for i in range(15))
        prices = tuple(close[-1] * math.exp(r) for r in rets)
        return Forecast(symbol, int(bars["ts"].iloc[-1]), rets, prices, "instant", "0", 0)


class NullJournal:
    """Counts and forgets: measures the worker without the database."""

    def __init__(self) -> None:
        self.n = 0

    def record(self, kind: str, doc: dict[str, Any]) -> str:
        self.n += 1
        return str(self.n)

    def set_prediction_outcome(self, *args: Any) -> None:
        self.n += 1

    def upsert_summary(self, *args: Any) -> None:
        self.n += 1

    def find(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []

    def sent_client_ids(self, run_id: str) -> set[str]:
        return set()

    def checkpoint_ns(self, run_id: str) -> int:
        return 0

    def flush(self, *args: Any) -> bool:
        return True


async def run_once(trades: pd.DataFrame, journal: Any, run_id: str) -> dict[str, Any]:
    config = all_strategies_config(fee_rate=0.0001)
    clock = SimClock(int(trades["ts"].iloc[0]))
    exchange = PaperExchange(
        PaperExchangeConfig(initial_balance=Decimal(10_000 * len(config.strategies))), clock=clock
    )
    feed = ReplayFeed(trades, speed=None)
    worker = Worker(config, feed=feed, exchange=exchange, journal=journal, clock=clock,
                    run_id=run_id, forecasts=InstantForecasts())  # fmt: skip
    worker.tick_latencies = []
    started = time.perf_counter()
    result = await worker.run()
    elapsed = time.perf_counter() - started
    lat = np.array(worker.tick_latencies, dtype=np.float64) / 1e3  # µs
    span_s = (int(trades["ts"].iloc[-1]) - int(trades["ts"].iloc[0])) / NS_PER_S
    return {
        "trades": result.trades,
        "seconds": span_s,
        "elapsed": elapsed,
        "orders": result.orders,
        "fills": result.fills,
        "events": sum(result.journaled.values()),
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "max": float(lat.max()),
        "ticks": len(lat),
    }


def report(name: str, r: dict[str, Any]) -> None:
    print(
        f"{name}: {r['trades']:,} trades / {r['seconds']:,.0f} s of market in {r['elapsed']:.1f} s → "
        f"{r['trades'] / r['elapsed']:,.0f} trades/s, {r['seconds'] / r['elapsed']:,.0f} bars/s "
        f"(1 s bars), {r['events']:,} journal events, {r['orders']} orders, {r['fills']} fills; "
        f"tick→decision p50 {r['p50']:.0f} µs, p99 {r['p99']:.0f} µs, max {r['max']:.0f} µs "
        f"over {r['ticks']:,} ticks"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="Worker-only run length.")
    parser.add_argument(
        "--journal-hours", type=float, default=2.0, help="Full-pipeline run length."
    )
    args = parser.parse_args()
    day, _ = load_trades(sample_path(TARDIS_DAY))
    t0 = int(day["ts"].iloc[0])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")  # fmt: skip
    only = day[day["ts"] < t0 + int(args.hours * 3600 * NS_PER_S)].reset_index(drop=True)
    report("worker only (null journal)", asyncio.run(run_once(only, NullJournal(), "bench-null")))
    from cryptoarena.trading.journal import Journal

    part = day[day["ts"] < t0 + int(args.journal_hours * 3600 * NS_PER_S)].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mongo={"embedded_dir": Path(tmp) / "journal"})  # type: ignore[arg-type]
        with Journal.open(settings, run_id="bench-journal") as journal:
            result = asyncio.run(run_once(part, journal, "bench-journal"))
            t = time.perf_counter()
            journal.sync(600)
            result["elapsed"] += time.perf_counter() - t  # until everything is in the database
        report("full pipeline (embedded journal)", result)


if __name__ == "__main__":
    main()
