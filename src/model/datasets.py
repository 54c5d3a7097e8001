"""The real bar sets the model trains and is judged on (shipped in data/sample/)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import pandas as pd
from cryptoarena.data.bars import build_bars
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.samples import BITSTAMP_DAY, TARDIS_DAY, sample_path

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _bars_of(path: Path) -> pd.DataFrame:
    if path.name.startswith("bitstamp") or path.suffixes[-2:] == [".log", ".bz2"]:
        from cryptoarena.model.bitstamp import load_bitstamp_bars

        bars, _ = load_bitstamp_bars(path)
        return bars
    trades, report = load_trades(path)
    if report.malformed:
        logger.warning("%s", report.summary())
    return build_bars(trades, NS_PER_S)


def load_bars(
    path: Path | str | None = None, *, max_bars: int | None = None, sample_dir: Path | None = None
) -> pd.DataFrame:
    """1-second bars of a trade file (default: the shipped Binance BTCUSDT day), first ``max_bars``."""
    p = Path(path) if path is not None else sample_path(TARDIS_DAY, sample_dir)
    bars = _bars_of(p.resolve())
    if max_bars is not None:
        bars = bars.iloc[:max_bars]
    return bars.reset_index(drop=True).copy()


def second_venue_bars(sample_dir: Path | None = None) -> pd.DataFrame:
    """Bitstamp BTC/USD 2015-05-01: book mid prices as 1-second bars (out-of-sample venue)."""
    return load_bars(sample_path(BITSTAMP_DAY, sample_dir))
