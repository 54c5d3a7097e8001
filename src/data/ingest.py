"""Recorded files → the lake, with a load report and quality checks per file.

Shared by ``arena data import``, the demo and the collect flow, so all three behave the same.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from cryptoarena.data.lake import NS_PER_DAY, Lake, PartitionWrite, day_start_ns
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.quality import QualityReport, check_bars, check_trades
from cryptoarena.data.records import LoadReport

logger = logging.getLogger(__name__)

_SYMBOL = re.compile(r"(?<![A-Z])([A-Z]{2,10}(?:USDT|USDC|USD|BTC|ETH))(?![A-Z])")


def guess_symbol(path: Path, default: str) -> str:
    """The symbol in a file name (``binance_usdm_BTCUSDT_trades…`` → BTCUSDT), else ``default``."""
    name = re.sub(r"[^A-Z0-9]+", "_", Path(path).name.upper())
    found = _SYMBOL.search(name)
    return found.group(1) if found else default


@dataclass
class ImportResult:
    path: Path
    symbol: str
    load: LoadReport
    writes: list[PartitionWrite] = field(default_factory=list)
    quality: QualityReport | None = None

    @property
    def added(self) -> int:
        return sum(w.added for w in self.writes)

    @property
    def duplicates(self) -> int:
        return sum(w.duplicates for w in self.writes)


def import_file(
    lake: Lake, path: Path, *, symbol: str | None = None, default_symbol: str = "BTCUSDT"
) -> ImportResult:
    """Load one recorded trade file (format detected), check it, merge it into the lake.

    Raises FileNotFoundError or loaders.UnknownFormatError before anything is written. A file
    that fails the quality checks is refused as a whole (ValueError), leaving the lake unchanged.
    """
    path = Path(path)
    trades, report = load_trades(path)
    sym = symbol or guess_symbol(path, default_symbol)
    return store_trades(lake, trades, sym, report=report, path=path)


def store_trades(
    lake: Lake,
    trades: pd.DataFrame,
    symbol: str,
    *,
    report: LoadReport | None = None,
    path: Path | None = None,
) -> ImportResult:
    """Check an already loaded trade frame and merge it into the lake (see :func:`import_file`)."""
    name = path.name if path else f"{symbol} trades"
    report = report or LoadReport(name, rows=len(trades))
    quality = check_trades(trades, source=name)
    if not quality.ok:
        raise ValueError(f"refusing {path or name}: {quality.summary()}")
    result = ImportResult(path or Path(name), symbol, report, quality=quality)
    result.writes = lake.write_trades(symbol, trades)
    logger.info("imported %s as %s: %s", name, symbol, report.summary())
    return result


def check_lake(
    lake: Lake, symbol: str | None = None, gap_tolerance_s: float = 60.0
) -> list[QualityReport]:
    """Quality checks over every stored day (trades and their 1 s bars)."""
    reports = []
    for sym in [symbol] if symbol else lake.symbols():
        for day in lake.days(sym):
            start = day_start_ns(day)
            span = (start, start + NS_PER_DAY)
            label = f"{sym} {day}"
            trades = lake.read_trades(sym, *span)
            reports.append(check_trades(trades, source=label, gap_tolerance_s=gap_tolerance_s))
            bars = lake.read_bars(sym, *span)
            reports.append(check_bars(bars, source=label, gap_tolerance_s=gap_tolerance_s))
    return reports
