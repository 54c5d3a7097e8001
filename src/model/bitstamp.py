"""Bitstamp BTC/USD 2015 raw feed → 1-second bars for the out-of-sample venue check.

The price is the mid of the top-of-book snapshots (``order_book`` lines), last per second and
forward-filled; the 2015 trade list misses ~16% of trades, so it only feeds the activity features
(volume, count, VWAP). It has no taker side, so buy/sell volumes are zero (order-flow imbalance 0).
"""

from __future__ import annotations

import bz2
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from cryptoarena.data.records import NS_PER_S, LoadReport

logger = logging.getLogger(__name__)


def _parse(path: Path, report: LoadReport) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    book_ts: list[int] = []
    mids: list[float] = []
    trade_ts: list[int] = []
    trades: list[tuple[float, float]] = []
    with bz2.open(path, "rt") as f:
        for lineno, line in enumerate(f, start=1):
            head = line[:40]
            is_book = " order_book " in head
            if not is_book and " trade " not in head:
                continue
            try:
                ms, kind, payload = line.rstrip("\n").split(" ", 2)
                data = json.loads(payload)
                if kind == "order_book":
                    bid, ask = float(data["bids"][0][0]), float(data["asks"][0][0])
                    if not 0 < bid <= ask:
                        raise ValueError(f"crossed or empty book {bid}/{ask}")
                    book_ts.append(int(ms))
                    mids.append((bid + ask) / 2)
                elif kind == "trade":
                    trades.append((float(data["price"]), float(data["amount"])))
                    trade_ts.append(int(ms))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                report.refuse(1, f"line {lineno}: {exc.__class__.__name__}: {exc}")
    tr = np.asarray(trades, dtype=np.float64).reshape(-1, 2)
    return np.asarray(book_ts, np.int64), np.asarray(mids), np.asarray(trade_ts, np.int64), tr


def load_bitstamp_bars(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """1-second bars (records.BAR_COLUMNS) from a Bitstamp raw log; ``close`` is the book mid."""
    report = LoadReport(str(path))
    book_ms, mid, trade_ms, trades = _parse(Path(path), report)
    if len(book_ms) == 0:
        raise ValueError(f"{path}: no order_book snapshots")
    order = np.argsort(book_ms, kind="stable")
    book_s, mid = book_ms[order] // 1000, mid[order]
    first, last = int(book_s[0]), int(book_s[-1])
    n = last - first + 1
    idx = book_s - first
    close = np.full(n, np.nan)
    close[idx] = mid  # the last snapshot of each second wins (sorted, later writes overwrite)
    high = np.full(n, -np.inf)
    low = np.full(n, np.inf)
    np.maximum.at(high, idx, mid)
    np.minimum.at(low, idx, mid)
    close = pd.Series(close).ffill().to_numpy()
    prev = np.concatenate(([close[0]], close[:-1]))
    has = np.isfinite(high)
    high = np.where(has, np.maximum(high, prev), np.maximum(close, prev))
    low = np.where(has, np.minimum(low, prev), np.minimum(close, prev))
    volume = np.zeros(n)
    notional = np.zeros(n)
    count = np.zeros(n, np.int64)
    t_idx = trade_ms // 1000 - first
    keep = (t_idx >= 0) & (t_idx < n)
    np.add.at(volume, t_idx[keep], trades[keep, 1])
    np.add.at(notional, t_idx[keep], trades[keep, 0] * trades[keep, 1])
    np.add.at(count, t_idx[keep], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(volume > 0, notional / volume, close)
    bars = pd.DataFrame(
        {
            "ts": (np.arange(first, last + 1, dtype=np.int64) * NS_PER_S),
            "open": prev,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "vwap": vwap,
            "trades": count,
            "buy_volume": np.zeros(n),
            "sell_volume": np.zeros(n),
        }
    )
    report.rows = n
    logger.info("%s: %d bars from %d snapshots and %d trades", path, n, len(mid), len(trades))
    return bars, report
