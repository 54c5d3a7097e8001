"""Demo step for market data: load the shipped real trades and build 1-second bars."""

from __future__ import annotations

import logging

import numpy as np
from cryptoarena.config import Settings
from cryptoarena.data.bars import build_bars
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.samples import BINANCE_FEED, NAUTILUS_TRADES, TARDIS_DAY, sample_path
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

logger = logging.getLogger(__name__)


def demo_step(settings: Settings, console: Console, quick: bool) -> str:
    names = (
        [NAUTILUS_TRADES, BINANCE_FEED] if quick else [NAUTILUS_TRADES, BINANCE_FEED, TARDIS_DAY]
    )
    table = Table(title="shipped real trades → 1-second bars")
    for col in ("file", "trades", "malformed", "bars", "empty s", "first", "last", "close range"):
        table.add_column(col)
    total_trades = total_bars = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading and building bars", total=len(names))
        for name in names:
            trades, report = load_trades(sample_path(name, settings.data.sample_dir))
            bars = build_bars(trades, NS_PER_S)
            total_trades += len(trades)
            total_bars += len(bars)
            ts = bars["ts"].to_numpy(np.int64)
            table.add_row(
                name,
                f"{len(trades):,}",
                str(report.malformed),
                f"{len(bars):,}",
                f"{int((bars['trades'] == 0).sum()):,}",
                str(np.datetime64(int(ts[0]), "ns").astype("datetime64[s]")),
                str(np.datetime64(int(ts[-1]), "ns").astype("datetime64[s]")),
                f"{bars['close'].min():,.2f} – {bars['close'].max():,.2f}",
            )
            progress.advance(task)
    console.print(table)
    return f"data: loaded {total_trades:,} real trades from {len(names)} files into {total_bars:,} one-second bars"
