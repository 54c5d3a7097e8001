"""``arena backtest --bars``: a backtest over recorded 1-minute klines (Binance daily files).

Builds the run like any backtest (the same :class:`Worker` composition, the journal in bulk
mode, the run's "started"/"stopped" documents, so ``arena report`` reads it), with a
the paper venue fed bars (:meth:`PaperExchange.on_bars`, the bar fill rule) and
:mod:`cryptoarena.trading.engine.bar_drive` as the clock driver. Strategies that cannot trade 1 m klines (a bar size that is not a whole number of
minutes, or forecast strategies, which need 1 s bars and a model) are left out of the run with
a warning, and the run's "started" document names them with the reason (``skipped``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.data.records import NS_PER_S
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.engine import WorkerResult
from cryptoarena.trading.engine.session import SessionError
from cryptoarena.trading.exchange.paper import PaperExchangeConfig
from cryptoarena.trading.risk.killswitch import KillSwitch

logger = logging.getLogger(__name__)

MINUTE_NS = 60 * NS_PER_S
# Binance's daily kline dumps: <SYMBOL>-<interval>-<date>.csv[.gz]
_KLINE_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\w+?)-\d{4}-\d{2}(-\d{2})?\.csv")


@dataclass(frozen=True)
class BarRunOptions:
    files: tuple[Path, ...]
    run_id: str | None = None
    slippage_bps: float = 1.0
    equity_every_s: float = 3600.0
    progress: bool = True
    # The venue's fees, instruments, leverage, volume cap (default: the paper venue's, Bybit's;
    # slippage and capital from above, no latency: a bar is the model's smallest step).
    fill: PaperExchangeConfig | None = None


def kline_files(paths: Sequence[Path]) -> list[Path]:
    """The files given (a folder stands for the kline files in it), checked: they exist, are
    kline files, of one symbol and the 1 m interval where their names say."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and ".csv" in p.name)
            if not inside:
                raise SessionError(f"--bars {path}: no kline files (*.csv, *.csv.gz) in it")
            files += inside
        elif not path.exists():
            raise SessionError(f"--bars {path}: no such file")
        else:
            files.append(path)
    if not files:
        raise SessionError("--bars needs kline files (Binance 1 m daily CSVs)")
    from cryptoarena.data.loaders import looks_like_klines

    symbols: dict[str, Path] = {}
    for path in files:
        match = _KLINE_NAME.match(path.name)
        if match is not None:
            if match["interval"] != "1m":
                raise SessionError(f"--bars {path}: {match['interval']} klines; 1m klines needed")
            symbols.setdefault(match["symbol"], path)
        try:
            ok = looks_like_klines(path)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise SessionError(f"--bars {path}: unreadable ({exc})") from None
        if not ok:
            raise SessionError(
                f"--bars {path}: not a Binance kline file (a trade file? give it to --replay-file)"
            )
    if len(symbols) > 1:
        named = ", ".join(f"{s} ({p.name})" for s, p in sorted(symbols.items()))
        raise SessionError(f"--bars mixes symbols: {named}; one symbol per run")
    return sorted(dict.fromkeys(files))


def load_bars(files: Sequence[Path]) -> pd.DataFrame:
    from cryptoarena.data.loaders import load_binance_klines_many

    bars, report = load_binance_klines_many(files)
    if report.malformed:
        logger.warning("bars: %s", report.summary())
    if bars.empty:
        raise SessionError("--bars: no klines in the files given")
    steps = np.diff(bars["ts"].to_numpy(np.int64))
    if len(steps) and int(steps.min()) != MINUTE_NS:
        raise SessionError(
            f"--bars: bars {int(steps.min()) / NS_PER_S:g} s apart; 1-minute klines needed"
        )
    gaps = int((steps > MINUTE_NS).sum())
    if gaps:
        logger.warning("bars: %d gaps between klines (not filled: no bars there)", gaps)
    return bars


def fit_for_bars(config: ArenaConfig) -> tuple[list[str], dict[str, str]]:
    """(strategies that trade 1 m klines, {left out: why})."""
    kept: list[str] = []
    skipped: dict[str, str] = {}
    for strategy in config.build_strategies():
        bar_ns = int(strategy.config.bar_ns)
        if strategy.uses_forecast:
            skipped[strategy.name] = "forecast strategy: needs 1 s bars and a model"
        elif strategy.config.execution == "maker":
            # Its quotes join the touch read from the trade tape; klines have none, so it would
            # never quote (and silently never trade).
            skipped[strategy.name] = "maker execution: klines have no touch to join (use the tape)"
        elif bar_ns % MINUTE_NS:
            skipped[strategy.name] = (
                f"bar_size {strategy.config.bar_size} is not a whole number of minutes"
            )
        else:
            kept.append(strategy.name)
    return kept, skipped


def bar_config(config: ArenaConfig, kept: list[str], equity_every_s: float) -> ArenaConfig:
    """The config of a bar run: the strategies kept, snapshots at the bar run's interval, and an
    order timeout of at least one bar."""
    specs = tuple(s for s in config.strategies if s.name in kept)
    risk = config.risk.model_copy(
        update={"overrides": {k: v for k, v in config.risk.overrides.items() if k in kept}}
    )
    arena = config.arena.model_copy(
        update={
            "equity_every_s": equity_every_s,
            "summary_every_s": max(config.arena.summary_every_s, equity_every_s),
            "order_timeout_s": max(config.arena.order_timeout_s, MINUTE_NS / NS_PER_S),
        }
    )
    return config.model_copy(update={"strategies": specs, "risk": risk, "arena": arena})


def run_bar_backtest(
    settings: Settings, config: ArenaConfig, options: BarRunOptions
) -> WorkerResult:
    from cryptoarena.trading.engine import Worker
    from cryptoarena.trading.engine.bar_drive import NoFeed, PulledUpdates, drive
    from cryptoarena.trading.exchange.paper import PaperExchange
    from cryptoarena.trading.execution.markouts import MarkoutPrices
    from cryptoarena.trading.journal import Journal

    files = kline_files(options.files)
    kept, skipped = fit_for_bars(config)
    for name, why in skipped.items():
        logger.warning("bar backtest: strategy %s left out: %s", name, why)
    if not kept:
        raise SessionError(
            "--bars: no strategy in the config trades 1 m klines (left out: "
            + "; ".join(f"{n}: {w}" for n, w in skipped.items())
            + ")"
        )
    started = time.perf_counter()
    bars = load_bars(files)
    logger.info(
        "bars: %d klines from %d files read in %.1f s", len(bars), len(files),
        time.perf_counter() - started,
    )  # fmt: skip
    cfg = bar_config(config, kept, options.equity_every_s)
    symbol = cfg.arena.symbol
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_id = options.run_id or f"bars-{stamp}"
    clock = SimClock(int(bars["ts"].iloc[0]))
    stream = PulledUpdates()
    exchange = PaperExchange(
        (options.fill or PaperExchangeConfig()).model_copy(
            update={
                "name": "bars",
                "latency_ms": 0.0,
                "slippage_bps": Decimal(str(options.slippage_bps)),
                "initial_balance": Decimal(str(cfg.arena.capital)),
            }
        ),
        clock=clock,
        updates=stream,
    )
    notes: dict[str, Any] = {
        "forecasts": "none (bar run)",
        "in_sample": None,
        "bars": {
            "files": len(files),
            "klines": len(bars),
            "first_ts_ns": int(bars["ts"].iloc[0]),
            "last_ts_ns": int(bars["ts"].iloc[-1]),
            "slippage_bps": options.slippage_bps,
            "fill_rule": "market at the next bar's open ± slippage; limits when a bar trades "
            "through; Bybit fees",
        },
        "skipped": skipped,
    }
    kill = KillSwitch(settings.trading.kill_file, settings.trading.kill_token)
    # Bulk: the worker's Recorder buffers and hands the journal large batches of inserts.
    journal = Journal.open(settings, run_id=run_id, clock=clock, bulk=True)
    try:
        if journal.runs(run_id):
            # A bar run is minutes long and deterministic: run it again under a new id.
            raise SessionError(f"run {run_id} already exists; bar backtests are not resumed")
        worker = Worker(
            cfg,
            feed=NoFeed(symbol),
            exchange=exchange,
            journal=journal,
            clock=clock,
            run_id=run_id,
            kill_switch=kill,
            source_name="bars",
            run_notes=notes,
            # 1 m klines hold no price 1, 5 or 15 s after a fill: those markouts are unknown.
            markout_prices=MarkoutPrices(ticks=False),
        )
        result = asyncio.run(drive(worker, exchange, stream, bars, progress=options.progress))
    finally:
        journal.close()
    return result
