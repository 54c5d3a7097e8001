"""Demo step for market data: load the shipped real trades, build 1-second bars, fill the lake
(settings.data.lake_dir) with the shipped day and run the data-quality checks on what it holds."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from cryptoarena.config import Settings
from cryptoarena.data.bars import build_bars
from cryptoarena.data.ingest import guess_symbol, store_trades
from cryptoarena.data.lake import NS_PER_DAY, Lake, day_start_ns
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.quality import check_bars, check_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.samples import BINANCE_FEED, NAUTILUS_TRADES, TARDIS_DAY, sample_path
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

logger = logging.getLogger(__name__)


def demo_step(settings: Settings, console: Console, quick: bool) -> str:
    # Quick or not, the lake gets the shipped training day (about 5 s): the drift and retrain
    # flows read its last half hour, and the demo's "what next" suggests them (with the
    # 46-second file alone, `arena flows run drift` had 47 bars and failed).
    names = [NAUTILUS_TRADES, BINANCE_FEED, TARDIS_DAY]
    lake_name = TARDIS_DAY
    table = Table(title="shipped real trades → 1-second bars")
    for col in ("file", "trades", "malformed", "bars", "empty s", "first", "last", "close range"):
        table.add_column(col)
    total_trades = total_bars = 0
    loaded: dict[str, pd.DataFrame] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading and building bars", total=len(names))
        for name in names:
            trades, report = load_trades(sample_path(name, settings.data.sample_dir))
            loaded[name] = trades
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
    lake_line = _fill_lake(settings, console, lake_name, loaded[lake_name])
    return (
        f"data: loaded {total_trades:,} real trades from {len(names)} files into "
        f"{total_bars:,} one-second bars; {lake_line}"
    )


def _fill_lake(settings: Settings, console: Console, name: str, trades: pd.DataFrame) -> str:
    lake = Lake(settings.data.lake_dir)
    symbol = guess_symbol(sample_path(name, settings.data.sample_dir), settings.data.symbol)
    result = store_trades(lake, trades, symbol)
    problems = gaps = 0
    for write in result.writes:
        start = day_start_ns(write.day)
        span = (start, start + NS_PER_DAY)
        label = f"{symbol} {write.day}"
        for report in (
            check_trades(lake.read_trades(symbol, *span), source=label),
            check_bars(lake.read_bars(symbol, *span), source=label),
        ):
            console.print(f"quality: {report.summary()}")
            problems += len(report.errors)
            gaps += len(report.gaps)
    days = ", ".join(str(w.day) for w in result.writes)
    verdict = "all quality checks passed" if not problems else f"{problems} quality problems"
    return (
        f"lake {lake.root}: {symbol} {days} holds {sum(w.trades for w in result.writes):,} trades "
        f"({result.added:,} new) and {sum(w.bars for w in result.writes):,} bars; {verdict}"
        + (f", {gaps} gaps over 60 s" if gaps else "")
    )
