"""Trades to bars: a vectorised builder for files and an incremental one for live streams.

Both give the same bars for the same trades: identical times, OHLC and counts; volumes and VWAP
agree to float rounding (numpy sums pairwise, the live builder sums in arrival order). A second
(or any bar size) without trades is an explicit bar that carries the last close, zero volume.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from cryptoarena.data.bar_builder import BarBuilder
from cryptoarena.data.bar_segments import segments, spread_bars
from cryptoarena.data.records import BAR_COLUMNS, NS_PER_S, Bar

logger = logging.getLogger(__name__)

__all__ = ["BarBuilder", "build_bars", "build_bars_incremental", "parse_bar_size", "resample_bars"]

_UNITS = {"s": NS_PER_S, "m": 60 * NS_PER_S, "h": 3600 * NS_PER_S}


def parse_bar_size(text: str | int) -> int:
    """'1s', '15s', '1m', '5m', '1h' (or a number of seconds) → nanoseconds."""
    if isinstance(text, int):
        seconds = text
        if seconds <= 0:
            raise ValueError(f"bar size must be positive, got {text!r}")
        return seconds * NS_PER_S
    value, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not value.isdigit() or int(value) <= 0:
        raise ValueError(f"bar size must look like '1s', '5m' or '1h', got {text!r}")
    return int(value) * _UNITS[unit]


def empty_bars() -> pd.DataFrame:
    frame = pd.DataFrame({c: np.empty(0, np.float64) for c in BAR_COLUMNS})
    return frame.astype({"ts": np.int64, "trades": np.int64})


def build_bars(
    trades: pd.DataFrame,
    bar_ns: int = NS_PER_S,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    prev_close: float | None = None,
) -> pd.DataFrame:
    """Bars of ``bar_ns`` from a time-sorted trade frame (vectorised).

    ``start_ns``/``end_ns`` (bar-aligned, end exclusive) widen the span with empty bars; empty
    bars before the first trade need ``prev_close``, otherwise the span starts at the first trade.
    """
    ts = trades["ts"].to_numpy(np.int64)
    if len(ts) == 0:
        return empty_bars()
    if bool((np.diff(ts) < 0).any()):
        raise ValueError("trades must be sorted by time before building bars")
    bucket = ts // bar_ns
    step = np.diff(bucket)
    seg = segments(
        bucket,
        step,
        trades["price"].to_numpy(np.float64),
        trades["size"].to_numpy(np.float64),
        trades["side"].to_numpy(np.int8),
    )
    first = int(seg.bucket[0])
    last = int(seg.bucket[-1])
    if start_ns is not None and prev_close is not None:
        first = min(first, start_ns // bar_ns)
    if end_ns is not None:
        last = max(last, (end_ns - 1) // bar_ns)
    cols = spread_bars(first, last - first + 1, bar_ns, seg, prev_close)
    # copy=False: the columns are fresh arrays; pandas would otherwise copy them all again.
    return pd.DataFrame(cols, copy=False)


def build_bars_incremental(
    trades: pd.DataFrame, bar_ns: int = NS_PER_S, batch: int = 1024
) -> list[Bar]:
    """Run a trade frame through :class:`BarBuilder` in feed-sized batches (tests, benchmarks)."""
    builder = BarBuilder(bar_ns)
    out: list[Bar] = []
    ts = trades["ts"].to_numpy(np.int64)
    price = trades["price"].to_numpy(np.float64)
    size = trades["size"].to_numpy(np.float64)
    side = trades["side"].to_numpy(np.int8)
    for i in range(0, len(ts), batch):
        j = i + batch
        builder.add_many(ts[i:j], price[i:j], size[i:j], side[i:j], out)
    out.extend(builder.flush())
    return out


def resample_bars(bars: pd.DataFrame, bar_ns: int) -> pd.DataFrame:
    """Aggregate smaller bars (e.g. 1 s) into larger ones (e.g. 1 m) with the same rules."""
    if bars.empty:
        return empty_bars()
    key = bars["ts"].to_numpy(np.int64) // bar_ns
    g = bars.groupby(key, sort=True)
    traded = bars["trades"] > 0
    out = pd.DataFrame(
        {
            "ts": g["ts"].first().index.to_numpy(np.int64) * bar_ns,
            "open": g["open"].first().to_numpy(),
            "high": g["high"].max().to_numpy(),
            "low": g["low"].min().to_numpy(),
            "close": g["close"].last().to_numpy(),
            "volume": g["volume"].sum().to_numpy(),
            "trades": g["trades"].sum().to_numpy(np.int64),
            "buy_volume": g["buy_volume"].sum().to_numpy(),
            "sell_volume": g["sell_volume"].sum().to_numpy(),
        }
    )
    notional = (bars["vwap"] * bars["volume"]).where(traded, 0.0).groupby(key).sum().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["vwap"] = np.where(out["volume"] > 0, notional / out["volume"], out["close"])
    return out[list(BAR_COLUMNS)]
