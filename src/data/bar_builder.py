"""Incremental bars for live streams and replays (re-exported by :mod:`cryptoarena.data.bars`).

Small batches (a live feed message) go through a plain loop. Large batches (a replay, a
backfill) take a numpy fast path: the batch is cut into bar segments at once, only the carried
open bar is merged by hand, and the closed bars are built column-wise. Both paths give bars equal
to :func:`~cryptoarena.data.bars.build_bars`: times, OHLC and counts exactly, sums to rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from cryptoarena.data.bar_segments import empty_columns, segments, spread_bars
from cryptoarena.data.records import BAR_COLUMNS, NS_PER_S, Bar

logger = logging.getLogger(__name__)

# Below this many trades the Python loop beats numpy's per-batch overhead (~50 µs): measured on
# the sparse Tardis day (1.6 trades per bar) and the dense Binance feed (28 per bar); see bench/bars.py.
FAST_PATH_MIN = 200

# A frozen dataclass __init__ costs ~2.5 µs (object.__setattr__ per field); writing the slots
# directly gives the same, equal Bar at a fraction of the cost: bars are most of a replay's work.
_new = object.__new__
_SETTERS = tuple(getattr(Bar, name).__set__ for name in BAR_COLUMNS)


def _make_bar(
    ts: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    vol: float,
    vwap: float,
    n: int,
    buy: float,
    sell: float,
) -> Bar:
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 = _SETTERS
    bar = _new(Bar)
    s0(bar, ts)
    s1(bar, o)
    s2(bar, h)
    s3(bar, lo)
    s4(bar, c)
    s5(bar, vol)
    s6(bar, vwap)
    s7(bar, n)
    s8(bar, buy)
    s9(bar, sell)
    return bar


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
                _make_bar(
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
            out.append(_make_bar(bucket * self._bar_ns, c, c, c, c, 0.0, c, 0, 0.0, 0.0))
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
        self._add_loop((ts,), (price,), (size,), (side,), out)
        return out

    def add_many(
        self,
        ts: Sequence[int] | np.ndarray,
        price: Sequence[float] | np.ndarray,
        size: Sequence[float] | np.ndarray,
        side: Sequence[int] | np.ndarray,
        out: list[Bar] | None = None,
    ) -> list[Bar]:
        """A batch of trades in time order (a feed message); returns the bars they closed."""
        out = [] if out is None else out
        if len(ts) < FAST_PATH_MIN:
            if isinstance(ts, np.ndarray):  # numpy scalars are slow in a Python loop
                ts, price, size, side = (np.asarray(a).tolist() for a in (ts, price, size, side))
            self._add_loop(ts, price, size, side, out)
            return out
        cols = self.add_arrays(
            np.asarray(ts, dtype=np.int64),
            np.asarray(price, dtype=np.float64),
            np.asarray(size, dtype=np.float64),
            np.asarray(side, dtype=np.int8),
        )
        if len(cols["ts"]):
            out.extend(map(_make_bar, *(cols[c].tolist() for c in BAR_COLUMNS)))
        return out

    def _add_loop(
        self,
        ts: Sequence[int] | np.ndarray,
        price: Sequence[float] | np.ndarray,
        size: Sequence[float] | np.ndarray,
        side: Sequence[int] | np.ndarray,
        out: list[Bar],
    ) -> None:
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

    def add_arrays(
        self, ts: np.ndarray, price: np.ndarray, size: np.ndarray, side: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Numpy fast path: a batch of trades → the bars it closed, as columns (BAR_COLUMNS).

        Refuses a batch out of time order before changing any state."""
        n = len(ts)
        if n == 0:
            return empty_columns()
        bucket = ts // self._bar_ns
        current = self._bucket
        if current is not None and bucket[0] < current:
            raise ValueError(f"trade at {int(ts[0])} is older than the open bar")
        step = np.diff(bucket)
        if bool((step < 0).any()):
            raise ValueError("trades in a batch must be in time order")
        seg = segments(bucket, step, price, size, side)
        # The carried open bar: merged into the first segment when it is the same bar, else a
        # closed bar of its own (an empty one when advance() rolled to it without trades).
        carried: tuple[float, ...] | None = None
        if current is not None and self._count:
            state: tuple[float, ...] = (self._open, self._high, self._low, self._close)
            state += (self._vol, self._notional, self._buy, self._sell, float(self._count))
            if seg.bucket[0] == current:
                seg.open[0] = self._open
                seg.high[0] = max(self._high, seg.high[0])
                seg.low[0] = min(self._low, seg.low[0])
                seg.vol[0] += self._vol
                seg.notional[0] += self._notional
                seg.buy[0] += self._buy
                seg.sell[0] += self._sell
                seg.count[0] += self._count
            else:
                carried = state
        k = len(seg.bucket) - 1  # the last segment stays open
        self._bucket = int(seg.bucket[k])
        self._open, self._high = float(seg.open[k]), float(seg.high[k])
        self._low, self._close = float(seg.low[k]), float(seg.close[k])
        self._vol, self._notional = float(seg.vol[k]), float(seg.notional[k])
        self._buy, self._sell, self._count = (
            float(seg.buy[k]),
            float(seg.sell[k]),
            int(seg.count[k]),
        )

        first = current if current is not None else int(seg.bucket[0])
        span = self._bucket - first  # closed bars: buckets first .. last segment - 1
        if span <= 0:
            return empty_columns()
        closed = seg.head(k)
        if carried is not None:
            closed = closed.prepend(current, carried)  # type: ignore[arg-type]
        cols = spread_bars(first, span, self._bar_ns, closed, self.last_close)
        if k or carried is not None:
            self.last_close = float(cols["close"][-1])
        known = ~np.isnan(cols["close"])  # empty bars before any known price are not bars
        if not known.all():
            cols = {c: v[known] for c, v in cols.items()}
        return cols

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
