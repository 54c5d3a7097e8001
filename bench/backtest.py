"""Backtest speed on the shipped real day (issue #12): one command, one table, nothing written.

    .venv/bin/python -m bench.backtest [--only a,b,c]

(a) SMA 5/20 on the day's 1-second bars, one strategy: the engine (tick-level paper fills on the
    real tape, risk checks, the embedded journal through the bulk path, synchronous drive)
    against backtesting.py 0.6.6 on the same 1-second bars (its own fill model: next bar's
    open). Bars/s of both and the ratio; the same engine through the async route (the drive a
    live run takes, per-event journal) for comparison. Risk limits are opened up (no loss
    halt, 1,000 orders/min) so both trade the whole day like backtesting.py does.
(b) ``arena backtest --config configs/arena.example.toml`` over the full day, end to end in a
    subprocess (Python start-up, model load, batched forecasts, replay, journal, report): every
    strategy and the AI arm with the in-process ``@champion`` (``--allow-in-sample``: the
    shipped day may be inside the model's training span).
(c) How cost grows: the engine with 1, 2, 4 and 8 of the example config's strategies (the AI
    arm left out) over the full day, and all 8 over 1 h, 6 h and 24 h.

Every journal lives in a temporary folder, removed afterwards. Each row carries the 1-minute
load average when it finished (the machine is shared: 2 cores) and the CPU time
(``time.process_time``, all threads of this process, or the subprocess's rusage).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import warnings
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
from cryptoarena.trading.config import ArenaConfig, load_arena_config, parse_arena_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.forecasts.local import replay_bars
from cryptoarena.trading.journal import Journal

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "arena.example.toml"
OPEN_RISK = {
    "strategy": {"max_daily_loss": 1.0, "max_drawdown": 1.0, "max_orders_per_minute": 1000},
    "global": {"max_daily_loss": 1.0, "max_drawdown": 1.0, "max_orders_per_minute": 1000},
}


def load() -> float:
    return os.getloadavg()[0]


def sma_config() -> ArenaConfig:
    spec = {"name": "sma", "kind": "sma_cross", "params": {"fast": 5, "slow": 20, "bar_size": "1s"}}
    return parse_arena_config({"risk": OPEN_RISK, "strategy": [spec]})


def engine_run(
    config: ArenaConfig, trades: pd.DataFrame, *, sync: bool | None = None
) -> dict[str, Any]:
    """One backtest through the worker with its own embedded journal (bulk when sync)."""
    clock = SimClock(int(trades["ts"].iloc[0]))
    capital = Decimal(str(config.arena.capital))
    exchange = PaperExchange(PaperExchangeConfig(initial_balance=capital), clock=clock)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mongo={"embedded_dir": Path(tmp)})  # type: ignore[arg-type]
        bulk = sync is not False
        journal = Journal.open(settings, run_id="bench", clock=clock, bulk=bulk)
        worker = Worker(config, feed=ReplayFeed(trades), exchange=exchange, journal=journal,
                        clock=clock, run_id="bench", sync=sync)  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(worker.run())
        journal.close()  # every event in the database: part of the cost
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall": wall,
        "cpu": cpu,
        "bars": result.bars,
        "fills": result.fills,
        "events": sum(result.journaled.values()),
        "sync": worker.sync,
        "load": load(),
    }


def backtesting_py(bars: pd.DataFrame) -> dict[str, Any]:
    from backtesting import Backtest, Strategy

    def sma(values: Any, n: int) -> Any:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 5)
            self.slow = self.I(sma, self.data.Close, 20)

        def next(self) -> None:
            if self.fast[-1] > self.slow[-1] and not self.position.is_long:
                self.buy()
            elif self.fast[-1] < self.slow[-1] and not self.position.is_short:
                self.sell()

    frame = pd.DataFrame(
        {
            "Open": bars["open"].to_numpy(),
            "High": bars["high"].to_numpy(),
            "Low": bars["low"].to_numpy(),
            "Close": bars["close"].to_numpy(),
            "Volume": bars["volume"].to_numpy(),
        },
        index=pd.to_datetime(bars["ts"].to_numpy(), unit="ns"),
    )
    bt = Backtest(frame, SmaCross, cash=1_000_000, commission=0.00055, exclusive_orders=True,
                  finalize_trades=True)  # fmt: skip
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        stats = bt.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "bars": len(frame), "trades": len(stats["_trades"]),
            "load": load()}  # fmt: skip


def arena_backtest() -> dict[str, Any]:
    """``arena backtest`` on the example config, end to end, in a subprocess."""
    arena = str(Path(sys.executable).with_name("arena"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
        env |= {
            "ARENA_MONGO__EMBEDDED_DIR": str(Path(tmp) / "journal"),
            "ARENA_TRADING__KILL_FILE": str(Path(tmp) / "arena.kill"),
            "ARENA_SERVING__URL": "http://127.0.0.1:9",  # no server: the champion in-process
            "OMP_NUM_THREADS": "1",
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.time()
        wall = time.perf_counter()
        proc = subprocess.run(
            [arena, "backtest", "--config", str(EXAMPLE), "--allow-in-sample", "--run-id", "bench"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - wall
        ended = time.time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"arena backtest failed ({proc.returncode}):\n{log[-2000:]}")
    ai = "champion in-process" if "in-process" in log else "AI arm stood aside (no model)"
    forecasts = next(
        (ln.split("AI arm: ")[1] for ln in log.splitlines() if "computed in" in ln), ""
    )
    summary = next((ln for ln in log.splitlines() if ln.startswith("run bench")), "")
    return {"wall": wall, "cpu": cpu, "load": load(), "ai": ai, "forecasts": forecasts,
            "summary": summary, "phases": phases(log, started, ended)}  # fmt: skip


def phases(log: str, started: float, ended: float) -> list[tuple[str, float]]:
    """Wall time between the run's log lines: start-up (Python, imports, the champion loaded),
    batched forecasts, the replay, and the rest (stop, journal drain, the report)."""

    def stamp(line: str) -> float:
        day, clock = line.split()[:2]
        return time.mktime(time.strptime(f"{day} {clock[:8]}", "%Y-%m-%d %H:%M:%S")) + float(
            "0." + clock[9:12]
        )

    # Only lines with a timestamp (the console's progress lines may come without one).
    lines = [ln for ln in log.splitlines() if re.match(r"\d{4}-\d\d-\d\d \d\d:", ln)]
    loaded = next((stamp(ln) for ln in lines if "loaded models:/" in ln), started)
    computed = next((stamp(ln) for ln in lines if "computed in batches" in ln), loaded)
    progress = [stamp(ln) for ln in lines if "progress: market time" in ln]
    last = progress[-1] if progress else computed
    return [
        ("start-up: Python, imports, the champion loaded", loaded - started),
        ("forecasts computed in batches", computed - loaded),
        ("replay up to the last progress line (23:50)", last - computed),
        ("last 10 min, stop, journal drain, report", ended - last),
    ]


def first_hours(trades: pd.DataFrame, hours: float) -> pd.DataFrame:
    t0 = int(trades["ts"].iloc[0])
    return trades[trades["ts"] < t0 + int(hours * 3600 * NS_PER_S)].reset_index(drop=True)


def classical(n: int) -> ArenaConfig:
    """The example config's first ``n`` strategies without the AI arm."""
    example = load_arena_config(EXAMPLE)
    specs = [s for s in example.strategies if s.kind != "ai_forecast"][:n]
    return example.model_copy(update={"strategies": tuple(specs)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="a,b,c", help="parts to run: a, b, c (comma-separated)")
    parts = set(parser.parse_args().only.split(","))
    trades, _ = load_trades(sample_path(TARDIS_DAY))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {len(trades):,} trades of {TARDIS_DAY}")  # fmt: skip
    if "a" in parts:
        bars = replay_bars(trades)
        ours = engine_run(sma_config(), trades)
        peer = backtesting_py(bars)
        before = engine_run(sma_config(), trades, sync=False)
        print("\n(a) SMA 5/20 on 1-second bars, one strategy, full day")
        print("| run | bars | wall s | cpu s | bars/s | vs backtesting.py | load |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        peer_rate = peer["bars"] / peer["wall"]
        sync_name = f"cryptoarena, sync drive + bulk journal ({ours['fills']:,} fills, "
        sync_name += f"{ours['events']:,} events)"
        for name, r in (
            (sync_name, ours),
            (f"cryptoarena, async route + per-event journal ({before['fills']:,} fills)", before),
            (f"backtesting.py 0.6.6 ({peer['trades']:,} trades)", peer),
        ):
            rate = r["bars"] / r["wall"]
            print(f"| {name} | {r['bars']:,} | {r['wall']:.2f} | {r['cpu']:.2f} | {rate:,.0f} | "
                  f"{rate / peer_rate:.3f}× | {r['load']:.2f} |")  # fmt: skip
    if "b" in parts:
        r = arena_backtest()
        print("\n(b) arena backtest --config configs/arena.example.toml, full day, end to end")
        print("| what | wall s | cpu s | load |")
        print("| --- | ---: | ---: | ---: |")
        print(f"| all strategies + AI arm ({r['ai']}) | {r['wall']:.2f} | {r['cpu']:.2f} | "
              f"{r['load']:.2f} |")  # fmt: skip
        for what, seconds in r["phases"]:
            print(f"| · {what} | {seconds:.2f} | | |")
        print(f"\n{r['summary']}\nforecasts: {r['forecasts']}")
    if "c" in parts:
        print("\n(c) how cost grows (example config without the AI arm; engine + journal)")
        print("| strategies | span | bars | wall s | cpu s | events | load |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n, hours in ((1, 24), (2, 24), (4, 24), (8, 24), (8, 1), (8, 6)):
            r = engine_run(classical(n), first_hours(trades, hours))
            print(f"| {n} | {hours} h | {r['bars']:,} | {r['wall']:.2f} | {r['cpu']:.2f} | "
                  f"{r['events']:,} | {r['load']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    np.seterr(all="ignore")
    warnings.filterwarnings("ignore")  # backtesting.py's notes on 1-second bars: not results
    logging.getLogger("cryptoarena").setLevel(logging.ERROR)  # halts of the runs: not results
    main()
