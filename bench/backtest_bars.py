"""Bar backtests over the recorded Binance BTCUSDT 1 m klines (issue #12 item 3).

    .venv/bin/python -m bench.backtest_bars sma [--year 2024] [--peers backtesting,backtrader]
    .venv/bin/python -m bench.backtest_bars six            # 23 months x the 6 classical strategies
    .venv/bin/python -m bench.backtest_bars growth         # strategies 1/2/4/6 and spans 1/6/23 months

``sma``: SMA 20/60 over a year of klines through ``arena backtest --bars``'s own code (the engine,
risk, books, router, journal in bulk mode, the paper venue fed bars: next open, Bybit taker fee, no
slippage), beside backtesting.py 0.6.6 and backtrader 1.9.78.123 set to the same rule (fills at
the next bar's open, commission 0.055 %, one position at a time, a flip at one open), and the
trades compared with backtesting.py's (entry and exit times equal, prices to 1e-12). Bars/s is
the bars of the span over the run's own time (kline files read once beforehand, outside it; the
peers get their data in memory too). Targets: ≥ 3x backtesting.py's bars/s and ≥ 50x
backtrader's; the six classical strategies over all 23 months in ≤ 30 s.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.bars import machine  # the machine line every bench prints
from tests.bar_peer import (  # the comparison the peer test makes, written once
    FEE,
    KLINES,
    NO_LIMITS,
    backtesting_py,
    our_trades,
    peer_data,
    satoshi_instrument,
)

SIX = [
    ("sma_cross", "sma_cross", {"fast": 5, "slow": 20}),
    ("macd", "macd", {"fast": 12, "slow": 26, "signal": 9}),
    ("rsi", "rsi_reversion", {"period": 14, "lower": 30, "upper": 70}),
    ("bollinger", "bollinger", {"period": 20, "k": 2.0}),
    ("donchian", "donchian", {"period": 20}),
    ("vwap", "vwap_reversion", {"period": 30, "threshold_bps": 10, "exit_bps": 2}),
]


def files(pattern: str) -> list[Path]:
    found = sorted(KLINES.glob(pattern))
    if not found:
        raise SystemExit(f"no kline files {KLINES}/{pattern} (set ARENA_BENCH_KLINES)")
    return found


def ours(
    paths: list[Path], specs: list[tuple[str, str, dict[str, Any]]], arena: dict[str, Any],
    risk: dict[str, Any] | None, *, fill: Any = None,
) -> tuple[float, float, str, Any, float]:  # fmt: skip
    """(load s, run s, run id, result, run CPU s): ``run_bar_backtest`` in a fresh journal. The
    files are read once first (page cache warm), then the run reads and runs them (its load is
    timed apart by its own log; the run time here excludes the read). CPU is the process's (the
    journal's writer thread too): on a shared, loaded machine it varies less than wall time."""
    from cryptoarena.config import get_settings
    from cryptoarena.trading.config import parse_arena_config
    from cryptoarena.trading.engine import bar_session

    home = tempfile.mkdtemp(prefix="bench-bars-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)  # a 23-month journal is ~650 MB
    os.environ["ARENA_MONGO__EMBEDDED_DIR"] = f"{home}/journal"
    os.environ["ARENA_TRADING__KILL_FILE"] = f"{home}/kill"
    get_settings.cache_clear()
    strategies = [{"name": n, "kind": k, "params": {**p, "bar_size": "1m"}} for n, k, p in specs]
    config = parse_arena_config({"arena": arena, "risk": risk or {}, "strategy": strategies})
    started = time.perf_counter()
    bars = bar_session.load_bars(bar_session.kline_files(paths))
    load_s = time.perf_counter() - started
    real_load = bar_session.load_bars
    bar_session.load_bars = lambda _files: bars  # type: ignore[assignment]
    try:
        run_id = f"bench-{time.time_ns()}"
        options = bar_session.BarRunOptions(
            files=tuple(paths), run_id=run_id, slippage_bps=0.0, progress=False, fill=fill
        )
        started, cpu = time.perf_counter(), time.process_time()
        result = bar_session.run_bar_backtest(get_settings(), config, options)
        run_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    finally:
        bar_session.load_bars = real_load  # type: ignore[assignment]
    return load_s, run_s, run_id, result, cpu_s


def backtrader_run(data: pd.DataFrame, fast: np.ndarray, slow: np.ndarray) -> tuple[float, int]:
    import backtrader as bt

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.i = -1

        def next(self) -> None:
            self.i += 1
            i = self.i
            if i < 60:
                return
            if fast[i] > slow[i] and self.position.size <= 0:
                self.order_target_percent(target=0.99)
            elif fast[i] < slow[i] and self.position.size >= 0:
                self.order_target_percent(target=-0.99)

    cerebro = bt.Cerebro(stdstats=False)
    frame = data.copy()
    frame.index = frame.index.tz_localize(None)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(1_000_000)
    cerebro.broker.setcommission(commission=FEE)
    started = time.perf_counter()
    strat = cerebro.run()[0]
    return time.perf_counter() - started, len(strat._orders)


def compare(a: pd.DataFrame, b: pd.DataFrame) -> str:
    n = min(len(a), len(b))
    same = (
        (a["entry_ns"].to_numpy()[:n] == b["entry_ns"].to_numpy()[:n])
        & (a["exit_ns"].to_numpy()[:n] == b["exit_ns"].to_numpy()[:n])
        & np.isclose(a["entry"].to_numpy()[:n], b["entry"].to_numpy()[:n], rtol=1e-12, atol=0)
        & np.isclose(a["exit"].to_numpy()[:n], b["exit"].to_numpy()[:n], rtol=1e-12, atol=0)
    )
    if len(a) == len(b) and bool(same.all()):
        return f"same {len(a):,} trades (entry/exit times equal, prices to 1e-12)"
    first = int(np.argmin(same)) if not same.all() else n
    return f"DIFFERENT: {len(a):,} vs {len(b):,} trades, first difference at trade {first}"


def bench_sma(year: str, peers: list[str]) -> None:
    paths = files(f"BTCUSDT-1m-{year}-*.csv.gz")
    arena = {"capital": 1_000_000.0, "min_trade_fraction": 0.5, "fee_rate": FEE}
    from cryptoarena.trading.exchange.paper import PaperExchangeConfig

    load_s, run_s, run_id, result, cpu_s = ours(
        paths, [("sma", "sma_cross", {"fast": 20, "slow": 60})], arena, NO_LIMITS,
        fill=PaperExchangeConfig(instruments=(satoshi_instrument(),)),
    )  # fmt: skip
    n = result.bars
    print(f"machine: {machine()}")
    print(f"klines: {n:,} ({len(paths)} files of {year}), read in {load_s:.2f} s")
    print(f"cryptoarena  run {run_s:6.2f} s  {n / run_s:>10,.0f} bars/s  "
          f"{result.orders:,} orders, {result.fills:,} fills, CPU {cpu_s:.2f} s")  # fmt: skip
    data, fast, slow = peer_data(paths)
    if "backtesting" in peers:
        cpu = time.process_time()
        bt_s, trades = backtesting_py(data, fast, slow)
        bt_cpu = time.process_time() - cpu  # (with building its trade list: a few ms)
        print(f"backtesting.py    {bt_s:6.2f} s  {n / bt_s:>10,.0f} bars/s  {len(trades):,} trades"
              f"  -> ours {bt_s / run_s:.2f}x its bars/s; CPU {bt_cpu:.2f} s: ours "
              f"{bt_cpu / cpu_s:.2f}x by CPU")  # fmt: skip
        print(f"  trades: {compare(our_trades(run_id), trades)}")
    if "backtrader" in peers:
        btr_s, orders = backtrader_run(data, fast, slow)
        print(f"backtrader        {btr_s:6.2f} s  {n / btr_s:>10,.0f} bars/s  {orders:,} orders"
              f"  -> ours {btr_s / run_s:.1f}x its bars/s")  # fmt: skip


def bench_six(months: str, count: int, example_limits: bool) -> float:
    paths = files(f"BTCUSDT-1m-{months}.csv.gz")
    risk = None if example_limits else NO_LIMITS
    load_s, run_s, _, result, cpu_s = ours(paths, SIX[:count], {}, risk)
    print(f"{count} strategies, {len(paths)} days ({result.bars:,} klines, read in {load_s:.1f} s):"
          f" run {run_s:.2f} s, CPU {cpu_s:.2f} s ({result.bars / run_s:,.0f} bars/s), "
          f"{result.orders:,} orders, "
          f"{result.fills:,} fills, {'example' if example_limits else 'no'} loss limits")  # fmt: skip
    return run_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["sma", "six", "growth"])
    parser.add_argument("--year", default="2024")
    parser.add_argument("--peers", default="backtesting,backtrader")
    parser.add_argument("--no-limits", action="store_true", help="six: loss limits off")
    args = parser.parse_args()
    import logging
    import sys

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # lines as they come

    logging.basicConfig(level=logging.WARNING)
    if args.what == "sma":
        bench_sma(args.year, [p for p in args.peers.split(",") if p])
    elif args.what == "six":
        print(f"machine: {machine()}")
        bench_six("*", 6, not args.no_limits)
    else:
        print(f"machine: {machine()}")
        for count in (1, 2, 4, 6):
            bench_six("2024-0[1-3]-*", count, not args.no_limits)
        for months in ("2024-01-*", "2024-0[1-6]-*", "*"):
            bench_six(months, 6, not args.no_limits)


if __name__ == "__main__":
    main()
