"""Bar segments: per-bar aggregates of time-sorted trades, and their spreading into a dense run
of bars (empty bars carry the previous close). Shared by ``build_bars`` and ``BarBuilder``."""

from __future__ import annotations

import numpy as np
from cryptoarena.data.records import BAR_COLUMNS


class Segments:
    """Per-bar aggregates of consecutive trades that fall in the same bar."""

    __slots__ = (
        "bucket",
        "buy",
        "close",
        "count",
        "high",
        "low",
        "notional",
        "open",
        "sell",
        "vol",
    )

    def __init__(self, *arrays: np.ndarray) -> None:
        (self.bucket, self.open, self.high, self.low, self.close, self.vol, self.notional) = arrays[
            :7
        ]
        (self.buy, self.sell, self.count) = arrays[7:]

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self.bucket,
            self.open,
            self.high,
            self.low,
            self.close,
            self.vol,
            self.notional,
            self.buy,
            self.sell,
            self.count,
        )

    def head(self, k: int) -> Segments:
        return Segments(*(a[:k] for a in self.arrays()))

    def prepend(self, bucket: int, values: tuple[float, ...]) -> Segments:
        row = (bucket, *values)
        return Segments(
            *(
                np.concatenate(([v], a)).astype(a.dtype)
                for v, a in zip(row, self.arrays(), strict=True)
            )
        )


def segments(
    bucket: np.ndarray, step: np.ndarray, price: np.ndarray, size: np.ndarray, side: np.ndarray
) -> Segments:
    """Aggregate time-sorted trades per bar (``step`` is ``np.diff(bucket)``)."""
    starts = np.flatnonzero(np.concatenate(([True], step != 0)))
    ends = np.append(starts[1:], len(bucket))
    return Segments(
        bucket[starts],
        price[starts],
        np.maximum.reduceat(price, starts),
        np.minimum.reduceat(price, starts),
        price[ends - 1],
        np.add.reduceat(size, starts),
        np.add.reduceat(price * size, starts),
        np.add.reduceat(size * (side > 0), starts),
        np.add.reduceat(size * (side < 0), starts),
        ends - starts,
    )


def empty_columns() -> dict[str, np.ndarray]:
    cols = {c: np.empty(0, np.float64) for c in BAR_COLUMNS}
    cols["ts"] = np.empty(0, np.int64)
    cols["trades"] = np.empty(0, np.int64)
    return cols


def spread_bars(
    first: int, n: int, bar_ns: int, seg: Segments, prev_close: float | None
) -> dict[str, np.ndarray]:
    """Bar columns for buckets ``first .. first+n-1`` from the traded ``seg``; bars without
    trades carry the previous close (NaN before any known price) with zero volume."""
    pos = seg.bucket - first
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(seg.vol > 0, seg.notional / seg.vol, seg.close)
    ts = np.arange(first, first + n, dtype=np.int64) * bar_ns
    if len(pos) == n:  # every bar traded: nothing to spread
        return {
            "ts": ts,
            "open": seg.open,
            "high": seg.high,
            "low": seg.low,
            "close": seg.close,
            "volume": seg.vol,
            "vwap": vwap,
            "trades": seg.count.astype(np.int64),
            "buy_volume": seg.buy,
            "sell_volume": seg.sell,
        }
    # Index of the latest traded bar at or before each bar: carries the close forward.
    src = np.full(n, -1, dtype=np.int64)
    src[pos] = pos
    np.maximum.accumulate(src, out=src)
    known = src >= 0
    close = np.full(n, np.nan if prev_close is None else prev_close)
    traded_close = np.empty(n)
    traded_close[pos] = seg.close
    close[known] = traded_close[src[known]]

    def fill(values: np.ndarray, default: np.ndarray | float) -> np.ndarray:
        out = default.copy() if isinstance(default, np.ndarray) else np.full(n, default)
        out[pos] = values
        return out

    trades = np.zeros(n, dtype=np.int64)
    trades[pos] = seg.count
    return {
        "ts": ts,
        "open": fill(seg.open, close),
        "high": fill(seg.high, close),
        "low": fill(seg.low, close),
        "close": close,
        "volume": fill(seg.vol, 0.0),
        "vwap": fill(vwap, close),
        "trades": trades,
        "buy_volume": fill(seg.buy, 0.0),
        "sell_volume": fill(seg.sell, 0.0),
    }
