"""The record types every part agrees on: trades and bars, as columns and as single records.

A trade frame is a pandas DataFrame with columns ``TRADE_COLUMNS``: ``ts`` (exchange time, int64
nanoseconds since the epoch, UTC), ``price`` and ``size`` (float64), ``side`` (int8, the taker
side: +1 buy, -1 sell, 0 unknown) and ``trade_id`` (string). A bar frame has ``BAR_COLUMNS``;
``ts`` is the bar's open time in ns and seconds without trades are explicit rows with zero volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the records themselves need no pandas (the dashboard imports them)
    import pandas as pd

TRADE_COLUMNS: tuple[str, ...] = ("ts", "price", "size", "side", "trade_id")
BAR_COLUMNS: tuple[str, ...] = (
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trades",
    "buy_volume",
    "sell_volume",
)
NS_PER_S = 1_000_000_000
BUY, SELL, UNKNOWN_SIDE = 1, -1, 0


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade."""

    ts: int  # ns since epoch, UTC, exchange time
    price: float
    size: float
    side: int  # taker side: +1 buy, -1 sell, 0 unknown
    trade_id: str
    symbol: str = "BTCUSDT"


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed bar; ``ts`` is its open time in ns."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    trades: int
    buy_volume: float
    sell_volume: float


@dataclass
class LoadReport:
    """What a loader read: rows kept, rows refused and why (a few examples)."""

    source: str
    rows: int = 0
    malformed: int = 0
    examples: list[str] = field(default_factory=list)

    def refuse(self, count: int, why: str) -> None:
        if count <= 0:
            return
        self.malformed += count
        if len(self.examples) < 10:
            self.examples.append(why)

    def summary(self) -> str:
        text = f"{self.source}: {self.rows} rows"
        if self.malformed:
            text += f", {self.malformed} malformed ({'; '.join(self.examples[:3])})"
        return text


def empty_trades() -> pd.DataFrame:
    return trades_frame(
        np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0, np.int8), np.empty(0, object)
    )


def trades_frame(
    ts: np.ndarray, price: np.ndarray, size: np.ndarray, side: np.ndarray, trade_id: np.ndarray
) -> pd.DataFrame:
    """Build a trade frame with the canonical dtypes, sorted by time (stable)."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "ts": np.asarray(ts, dtype=np.int64),
            "price": np.asarray(price, dtype=np.float64),
            "size": np.asarray(size, dtype=np.float64),
            "side": np.asarray(side, dtype=np.int8),
            "trade_id": np.asarray(trade_id).astype(str).astype(object),
        }
    )
    if len(frame) and not bool(np.all(np.diff(frame["ts"].to_numpy()) >= 0)):
        frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    return frame


def trades_from_records(trades: list[Trade]) -> pd.DataFrame:
    return trades_frame(
        np.fromiter((t.ts for t in trades), np.int64, len(trades)),
        np.fromiter((t.price for t in trades), np.float64, len(trades)),
        np.fromiter((t.size for t in trades), np.float64, len(trades)),
        np.fromiter((t.side for t in trades), np.int8, len(trades)),
        np.array([t.trade_id for t in trades], dtype=object),
    )


def bars_to_records(bars: pd.DataFrame) -> list[Bar]:
    cols = [bars[c].to_numpy().tolist() for c in BAR_COLUMNS]
    return [Bar(*row) for row in zip(*cols, strict=True)]


def records_to_bars(bars: list[Bar]) -> pd.DataFrame:
    import pandas as pd

    if not bars:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS}).astype(
            {"ts": np.int64, "trades": np.int64}
        )
    frame = pd.DataFrame([[getattr(b, c) for c in BAR_COLUMNS] for b in bars], columns=BAR_COLUMNS)
    return frame.astype({"ts": np.int64, "trades": np.int64})
