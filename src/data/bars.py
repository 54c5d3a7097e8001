"""Trades to bars: a vectorised builder for files and an incremental one for live streams.

Both give the same bars for the same trades: identical times, OHLC and counts; volumes and VWAP
agree to float rounding (numpy sums pairwise, the live builder sums in arrival order). A second
(or any bar size) without trades is an explicit bar that carries the last close, zero volume.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from cryptoarena.data.records import BAR_COLUMNS, NS_PER_S, Bar

logger = logging.getLogger(__name__)

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
    if np.any(np.diff(ts) < 0):
        raise ValueError("trades must be sorted by time before building bars")
    price = trades["price"].to_numpy(np.float64)
    size = trades["size"].to_numpy(np.float64)
    side = trades["side"].to_numpy(np.int8)

    bucket = ts // bar_ns
    starts = np.concatenate(([0], np.flatnonzero(bucket[1:] != bucket[:-1]) + 1))
    ends = np.append(starts[1:], len(ts))
    seg_open = price[starts]
    seg_close = price[ends - 1]
    seg_high = np.maximum.reduceat(price, starts)
    seg_low = np.minimum.reduceat(price, starts)
    seg_vol = np.add.reduceat(size, starts)
    seg_notional = np.add.reduceat(price * size, starts)
    seg_buy = np.add.reduceat(np.where(side > 0, size, 0.0), starts)
    seg_sell = np.add.reduceat(np.where(side < 0, size, 0.0), starts)
    seg_count = ends - starts

    first = int(bucket[0])
    last = int(bucket[-1])
    if start_ns is not None and prev_close is not None:
        first = min(first, start_ns // bar_ns)
    if end_ns is not None:
        last = max(last, (end_ns - 1) // bar_ns)
    n = last - first + 1
    pos = bucket[starts] - first

    has = np.zeros(n, dtype=bool)
    has[pos] = True
    # Index of the latest bar with trades at or before each bar: carries the close forward.
    src = np.where(has, np.arange(n), -1)
    np.maximum.accumulate(src, out=src)
    close_full = np.full(n, np.nan if prev_close is None else prev_close)
    traded_close = np.full(n, np.nan)
    traded_close[pos] = seg_close
    close_full[src >= 0] = traded_close[src[src >= 0]]

    def spread(values: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
        out = np.array(np.broadcast_to(fill, n), dtype=np.float64)
        out[pos] = values
        return out

    vol = spread(seg_vol, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        seg_vwap = np.where(seg_vol > 0, seg_notional / seg_vol, seg_close)
    frame = pd.DataFrame(
        {
            "ts": (np.arange(first, last + 1, dtype=np.int64) * bar_ns),
            "open": spread(seg_open, close_full),
            "high": spread(seg_high, close_full),
            "low": spread(seg_low, close_full),
            "close": close_full,
            "volume": vol,
            "vwap": spread(seg_vwap, close_full),
            "trades": spread(seg_count.astype(np.float64), 0.0).astype(np.int64),
            "buy_volume": spread(seg_buy, 0.0),
            "sell_volume": spread(seg_sell, 0.0),
        }
    )
    # Empty bars opened at the previous close; an open at a traded bar stays its first trade.
    return frame


class BarBuilder:
    """Incremental bars for a live stream: feed trades in time order, get closed bars back.

    A bar closes when a trade of a later bar arrives or when :meth:`advance` is told the time has
    passed its end (so quiet seconds still produce explicit empty bars).
    """

    __slots__ = (
        "_bar_ns",
        "_bucket",
        "_buy",
        "_close",
        "_count",
        "_high",
        "_low",
        "_notional",
        "_open",
        "_sell",
        "_vol",
        "last_close",
    )

    def __init__(self, bar_ns: int = NS_PER_S, *, last_close: float | None = None) -> None:
        if bar_ns <= 0:
            raise ValueError("bar_ns must be positive")
        self._bar_ns = bar_ns
        self._bucket: int | None = None
        self.last_close = last_close
        self._reset()

    @property
    def bar_ns(self) -> int:
        return self._bar_ns

    def _reset(self) -> None:
        self._open = self._high = self._low = self._close = 0.0
        self._vol = self._notional = self._buy = self._sell = 0.0
        self._count = 0

    def _emit(self, out: list[Bar]) -> None:
        bucket = self._bucket
        assert bucket is not None
        if self._count:
            vwap = self._notional / self._vol if self._vol > 0 else self._close
            out.append(
                Bar(
                    bucket * self._bar_ns,
                    self._open,
                    self._high,
                    self._low,
                    self._close,
                    self._vol,
                    vwap,
                    self._count,
                    self._buy,
                    self._sell,
                )
            )
            self.last_close = self._close
        elif self.last_close is not None:
            c = self.last_close
            out.append(Bar(bucket * self._bar_ns, c, c, c, c, 0.0, c, 0, 0.0, 0.0))
        self._reset()

    def _roll_to(self, bucket: int, out: list[Bar]) -> None:
        current = self._bucket
        if current is None:
            self._bucket = bucket
            return
        while current < bucket:
            self._emit(out)
            current += 1
            self._bucket = current

    def add(self, ts: int, price: float, size: float, side: int) -> list[Bar]:
        """One trade; returns the bars it closed (often none)."""
        out: list[Bar] = []
        self.add_many((ts,), (price,), (size,), (side,), out)
        return out

    def add_many(
        self,
        ts: Sequence[int],
        price: Sequence[float],
        size: Sequence[float],
        side: Sequence[int],
        out: list[Bar] | None = None,
    ) -> list[Bar]:
        """A batch of trades in time order (a feed message); returns the bars they closed."""
        out = [] if out is None else out
        bar_ns = self._bar_ns
        bucket = self._bucket
        # Locals for the hot loop: this runs once per trade on the live path.
        o, h, lo, c = self._open, self._high, self._low, self._close
        vol, notional, buy, sell, count = (
            self._vol,
            self._notional,
            self._buy,
            self._sell,
            self._count,
        )
        for t, p, q, s in zip(ts, price, size, side, strict=True):
            b = t // bar_ns
            if b != bucket:
                if bucket is not None:
                    if b < bucket:
                        raise ValueError(f"trade at {t} is older than the open bar")
                    self._open, self._high, self._low, self._close = o, h, lo, c
                    self._vol, self._notional, self._buy, self._sell = vol, notional, buy, sell
                    self._count = count
                    self._roll_to(b, out)
                bucket = self._bucket = b
                o = h = lo = c = p
                vol = notional = buy = sell = 0.0
                count = 0
            if count == 0:
                o = h = lo = p
            elif p > h:
                h = p
            elif p < lo:
                lo = p
            c = p
            vol += q
            notional += p * q
            if s > 0:
                buy += q
            elif s < 0:
                sell += q
            count += 1
        self._open, self._high, self._low, self._close = o, h, lo, c
        self._vol, self._notional, self._buy, self._sell, self._count = (
            vol,
            notional,
            buy,
            sell,
            count,
        )
        return out

    def advance(self, now_ns: int) -> list[Bar]:
        """Close every bar that ended at or before ``now_ns`` (quiet markets still tick)."""
        out: list[Bar] = []
        if self._bucket is None:
            return out
        target = now_ns // self._bar_ns
        if target > self._bucket:
            self._roll_to(target, out)
        return out

    def flush(self) -> list[Bar]:
        """Close the open bar (end of a replay)."""
        out: list[Bar] = []
        if self._bucket is not None and (self._count or self.last_close is not None):
            self._emit(out)
            self._bucket = None
        return out


def build_bars_incremental(
    trades: pd.DataFrame, bar_ns: int = NS_PER_S, batch: int = 1024
) -> list[Bar]:
    """Run a trade frame through :class:`BarBuilder` in feed-sized batches (tests, benchmarks)."""
    builder = BarBuilder(bar_ns)
    out: list[Bar] = []
    ts = trades["ts"].to_numpy(np.int64).tolist()
    price = trades["price"].to_numpy(np.float64).tolist()
    size = trades["size"].to_numpy(np.float64).tolist()
    side = trades["side"].to_numpy(np.int8).tolist()
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


def concat_bars(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [p for p in parts if not p.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty_bars()
