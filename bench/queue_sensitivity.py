"""How much maker results depend on the queue model (issue #20 item 1; docs/exchange.md).

    .venv/bin/python -m bench.queue_sensitivity [--minutes 240] [--start-minute 0] [--day bitstamp]

The classical strategies of ``configs/arena.example.toml`` (buy-and-hold and the AI arms left
out: the AI arm needs a served model) switched to ``execution = "maker"`` on 1 s bars, replayed
through the worker and the paper venue over a slice of a shipped day under each queue model.
``--day binance`` (default: Binance USD-M BTCUSDT 2020-02-22, trades only, so the L2/L3 models
cannot run on it): ``none`` (the old through rule), ``tape`` (the default: the last 10 s or the
last 20 prints, whichever reaches further back), and ``tape`` over the last 10 s only (the old
default) and the last 1 s only (less conservative estimates). ``--day bitstamp`` (Bitstamp BTC/USD
2015-05-01 with its recorded book, which the venue is given as an arena run on it is: takers walk
it): ``none``, ``tape`` (default), ``tape`` over 10 s only, ``l2`` and ``l3``. One row per strategy and model: fills, maker fills, maker
quantity, the mean 5 s markout of the maker fills (bps, positive: the market moved the fill's
way; ``results.markouts``) and P&L. Every journal lives in a temporary folder. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.data.book_replay import RecordedMarket, load_bitstamp_market
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.data.samples import BITSTAMP_DAY, TARDIS_DAY, sample_path
from cryptoarena.trading.config import ArenaConfig, parse_arena_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.results.markouts import markouts_bps

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "arena.example.toml"
SKIP = {"buy_and_hold", "ai_forecast"}
# (label, venue settings) per day: the models its data can run.
MODELS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "binance": [
        ("none", {"queue_model": "none"}),
        ("tape 10 s / 20 prints (default)", {"queue_model": "tape"}),
        ("tape 10 s only", {"queue_model": "tape", "queue_min_trades": 0}),
        ("tape 1 s only", {"queue_model": "tape", "queue_lookback_s": 1.0, "queue_min_trades": 0}),
    ],
    "bitstamp": [
        ("none", {"queue_model": "none"}),
        ("tape 10 s / 20 prints (default)", {"queue_model": "tape"}),
        ("tape 10 s only", {"queue_model": "tape", "queue_min_trades": 0}),
        ("l2", {"queue_model": "l2"}),
        ("l3", {"queue_model": "l3"}),
    ],
}
DAYS = {"binance": TARDIS_DAY, "bitstamp": BITSTAMP_DAY}


def maker_config() -> ArenaConfig:
    raw = tomllib.loads(EXAMPLE.read_text())
    strategies = []
    for spec in raw["strategy"]:
        if spec["kind"] in SKIP:
            continue
        params = {**spec.get("params", {}), "execution": "maker"}
        if "bar_size" in params:
            params["bar_size"] = "1s"
        spec = {k: v for k, v in spec.items() if k != "account"}
        strategies.append({**spec, "params": params})
    return parse_arena_config({"arena": raw.get("arena", {}), "strategy": strategies})


def run(
    config: ArenaConfig,
    trades: pd.DataFrame,
    venue: dict[str, Any],
    market: RecordedMarket | None = None,
) -> dict[str, Any]:
    clock = SimClock(int(trades["ts"].iloc[0]))
    capital = Decimal(str(config.arena.capital))
    cfg = PaperExchangeConfig(initial_balance=capital, **venue)
    exchange = PaperExchange(cfg, clock=clock, market=market)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mongo={"embedded_dir": Path(tmp)})  # type: ignore[arg-type]
        journal = Journal.open(settings, run_id="bench", clock=clock, bulk=True)
        worker = Worker(config, feed=ReplayFeed(trades), exchange=exchange, journal=journal,
                        clock=clock, run_id="bench")  # fmt: skip
        result = asyncio.run(worker.run())
        assert journal.sync(120), "the journal did not catch up"
        fills = list(journal.find("fills", {"run_id": "bench"}))
        journal.close()
    rows: dict[str, Any] = {}
    for s in config.strategies:
        mine = [f for f in fills if f.get("strategy") == s.name]
        maker = [f for f in mine if f.get("is_maker")]
        marks = markouts_bps(
            np.array([f["ts_ns"] for f in maker], np.int64),
            np.array([float(f["price"]) for f in maker]),
            np.array([1 if f["side"] == "Buy" else -1 for f in maker]),
            trades["ts"].to_numpy(np.int64),
            trades["price"].to_numpy(np.float64),
            (5,),
        )
        rows[s.name] = {
            "fills": len(mine),
            "maker": len(maker),
            "maker_qty": sum(float(f.get("qty", 0)) for f in maker),
            "markout_5s": float(np.nanmean(marks)) if len(maker) else float("nan"),
            "pnl": result.equity.get(s.name, float(capital)) - float(capital),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=240)
    parser.add_argument("--start-minute", type=int, default=0)
    parser.add_argument("--day", choices=sorted(DAYS), default="binance")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = sample_path(DAYS[args.day])
    trades, _ = load_trades(path)
    market = load_bitstamp_market(path)[0] if args.day == "bitstamp" else None
    models = MODELS[args.day]
    t0 = int(trades["ts"].iloc[0]) + args.start_minute * 60 * NS_PER_S
    t1 = t0 + args.minutes * 60 * NS_PER_S
    trades = trades[(trades["ts"] >= t0) & (trades["ts"] < t1)].reset_index(drop=True)
    config = maker_config()
    results = {label: run(config, trades, venue, market) for label, venue in models}
    print(f"{DAYS[args.day]}, minutes {args.start_minute}-{args.start_minute + args.minutes}, "
          f"{len(trades):,} trades; load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores\n")  # fmt: skip
    print("| strategy (maker, 1 s bars) | " + " | ".join(label for label, _ in models) + " |")
    print("|---|" + "---|" * len(models))
    for s in config.strategies:
        cells = []
        for label, _ in models:
            r = results[label][s.name]
            cells.append(f"{r['maker']}/{r['fills']} fills, {r['maker_qty']:.3f} BTC, "
                         f"5 s markout {r['markout_5s']:+.1f} bps, P&L {r['pnl']:+.2f}")  # fmt: skip
        print(f"| {s.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
