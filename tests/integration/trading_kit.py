"""Shared pieces for the trading tests: real tape slices, a journal in tmp, a worker to run,
and the `arena` command in a subprocess."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.data.feed import LIVE_FEED
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.data.samples import TARDIS_DAY, sample_path
from cryptoarena.serving.client import SERVED, Forecast, ForecastUnavailable
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
ARENA = str(Path(sys.executable).with_name("arena"))


@lru_cache(maxsize=1)
def tardis_day() -> pd.DataFrame:
    frame, _ = load_trades(sample_path(TARDIS_DAY))
    return frame


def tape_slice(start_s: float, minutes: float) -> pd.DataFrame:
    day = tardis_day()
    t0 = int(day["ts"].iloc[0]) + int(start_s * NS_PER_S)
    t1 = t0 + int(minutes * 60 * NS_PER_S)
    ts = day["ts"]
    return day[(ts >= t0) & (ts < t1)].reset_index(drop=True)


def journal_settings(tmp: Path) -> Settings:
    return Settings(mongo={"embedded_dir": tmp / "journal"}, home=tmp)  # type: ignore[arg-type]


def arena_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for an `arena` subprocess: no ARENA_* of the caller leaks in; the journal
    and the kill file live under ``tmp``; ``extra`` adds or overrides variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    return env | {
        "ARENA_MONGO__EMBEDDED_DIR": str(tmp / "journal"),
        "ARENA_TRADING__KILL_FILE": str(tmp / "arena.kill"),
        **extra,
    }


def start_arena(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``arena <args>`` from the repository root, stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [ARENA, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


class TrailingMoveSource:
    """A real (if naive) forecaster in-process: the next 1..15 s repeat the last 15 s' drift.

    ``fail_after`` makes every request after that many fail (a server that went away)."""

    capabilities = SERVED  # stands in for a model server: its requests may wait
    model_run_id = None

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    async def health(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise ForecastUnavailable("timeout after 0.5 s")
        close = bars["close"].to_numpy()
        if len(close) < 16:
            raise ForecastUnavailable("need 16 bars")
        drift = math.log(close[-1] / close[-16]) / 15
        rets = tuple(drift * (i + 1) for i in range(15))
        return Forecast(symbol, int(bars["ts"].iloc[-1]), rets,
                        tuple(close[-1] * math.exp(r) for r in rets), "trailing", "1", 0)  # fmt: skip


class CallbackFeed:
    """Calls ``on_batch(index)`` (or ``on_batch(index, batch)`` with ``with_batch``) before
    handing out each batch (to inject events mid-run)."""

    def __init__(self, feed: Any, on_batch: Any, *, with_batch: bool = False) -> None:
        self.feed, self.on_batch, self.with_batch = feed, on_batch, with_batch
        self.symbol, self.gaps = feed.symbol, feed.gaps
        # Async only, at the live equity interval (as a feed that declares nothing).
        self.capabilities = LIVE_FEED

    async def _iterate(self) -> Any:
        i = 0
        async for batch in self.feed:
            if self.with_batch:
                self.on_batch(i, batch)
            else:
                self.on_batch(i)
            i += 1
            yield batch

    def __aiter__(self) -> Any:
        return self._iterate()

    async def close(self) -> None:
        await self.feed.close()


async def run_worker(
    config: ArenaConfig,
    trades: pd.DataFrame,
    journal: Journal,
    *,
    run_id: str,
    source: Any = None,
    exchange: Any = None,
    kill_switch: Any = None,
    on_batch: Any = None,
    on_trades: Any = None,
    durable_orders: bool = False,
    speed: float | None = None,
    venue: dict[str, Any] | None = None,
) -> tuple[Worker, Any]:
    clock = SimClock(int(trades["ts"].iloc[0]))
    n = len(config.strategies)
    capital = Decimal(str(config.arena.capital * n))
    exchange = exchange or PaperExchange(
        PaperExchangeConfig(initial_balance=capital, **(venue or {})), clock=clock
    )
    # The data side's replay feed, as fast as possible (or ``speed``× real time); the worker
    # moves the clock itself.
    feed: Any = ReplayFeed(trades, speed=speed, batch_ms=100, max_batch=20)
    if on_batch is not None:
        feed = CallbackFeed(feed, on_batch)
    if on_trades is not None:  # on_trades(index, batch): sees the trades about to be handed out
        feed = CallbackFeed(feed, on_trades, with_batch=True)
    worker = Worker(config, feed=feed, exchange=exchange, journal=journal, clock=clock,
                    run_id=run_id, forecasts=source, kill_switch=kill_switch,
                    durable_orders=durable_orders)  # fmt: skip
    result = await worker.run()
    return worker, result
