"""Fill markouts: how the market moved after each fill, from the fill's side (issue #20 item 3).

The markout of a fill at horizon ``h`` is the reference price at ``fill time + h`` against the
fill price, in basis points, signed so that positive is good for the filled side (the price
rose after a buy, fell after a sell). The reference is the mid of the recorded book where a run
has one, else the last trade price at or before ``fill time + h``. Negative maker markouts are
adverse selection: quotes filled just before the market moved through them.

:func:`markouts_bps` computes them for a whole tape at once (benchmarks, recorded books); the
engine's :class:`~cryptoarena.trading.execution.markouts.MarkoutTracker` journals one
``markouts`` record per fill as its horizons pass; :class:`MarkoutStats` folds those records
into per-strategy counts and sums (the report and the dashboard's bounded read model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from cryptoarena.trading.results.model import MarkoutHorizon, Markouts

HORIZONS_S = (1, 5, 15)
NS_PER_S = 1_000_000_000
CONFIDENCE = 0.95
Z_95 = 1.959963984540054  # the two-sided 95 % normal quantile

P = TypeVar("P", float, np.ndarray)


def signed_bps(side: P, mark: P, price: P) -> P:
    """The markout rule, for one fill or arrays of them: ``side`` +1 buy, -1 sell."""
    return side * (mark / price - 1.0) * 1e4


def markouts_bps(
    fill_ts: np.ndarray,
    fill_px: np.ndarray,
    fill_side: np.ndarray,
    tape_ts: np.ndarray,
    tape_px: np.ndarray,
    horizons_s: tuple[int, ...] = HORIZONS_S,
) -> np.ndarray:
    """(n fills, len(horizons_s)) markouts in bps; NaN where the tape ends before the horizon.
    ``fill_side`` is +1 for a buy, -1 for a sell; ``tape_ts`` must be sorted."""
    fill_ts = np.asarray(fill_ts, np.int64)
    fill_px = np.asarray(fill_px, np.float64)
    side = np.asarray(fill_side, np.float64)
    tape_ts = np.asarray(tape_ts, np.int64)
    tape_px = np.asarray(tape_px, np.float64)
    out = np.full((len(fill_ts), len(horizons_s)), np.nan)
    if not len(tape_ts) or not len(fill_ts):
        return out
    last = tape_ts[-1]
    for k, h in enumerate(horizons_s):
        at = fill_ts + h * NS_PER_S
        idx = np.searchsorted(tape_ts, at, side="right") - 1
        ok = (idx >= 0) & (at <= last)
        mark = tape_px[np.clip(idx, 0, len(tape_px) - 1)]
        out[ok, k] = signed_bps(side[ok], mark[ok], fill_px[ok])
    return out


@dataclass
class _Moments:
    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        self.squares += x * x

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def interval(self) -> tuple[float, float] | None:
        """Normal 95 % interval of the mean (sample standard deviation / √n); None below 2."""
        if self.n < 2:
            return None
        mean = self.total / self.n
        var = max(0.0, (self.squares - self.n * mean * mean) / (self.n - 1))
        half = Z_95 * math.sqrt(var / self.n)
        return (mean - half, mean + half)


@dataclass
class MarkoutStats:
    """One strategy's markouts folded into counts and sums per horizon (all fills, makers,
    takers): a fixed-size aggregate, whatever the number of fills."""

    horizons_s: tuple[int, ...] = HORIZONS_S
    records: int = 0
    references: set[str] = field(default_factory=set)
    _all: list[_Moments] = field(default_factory=list)
    _maker: list[_Moments] = field(default_factory=list)
    _taker: list[_Moments] = field(default_factory=list)

    def __post_init__(self) -> None:
        for moments in (self._all, self._maker, self._taker):
            moments.extend(_Moments() for _ in self.horizons_s)

    def add(self, doc: Mapping[str, Any]) -> None:
        """Fold one ``markouts`` record (horizons it does not carry are skipped)."""
        self.records += 1
        split = self._maker if doc.get("is_maker") else self._taker
        bps: Sequence[float | None] = doc.get("bps") or ()
        refs: Sequence[str | None] = doc.get("ref") or ()
        for h, value, ref in zip(doc.get("horizons_s") or (), bps, refs, strict=False):
            if value is None or h not in self.horizons_s or not math.isfinite(value):
                continue
            k = self.horizons_s.index(h)
            self._all[k].add(float(value))
            split[k].add(float(value))
            if ref:
                self.references.add(str(ref))

    def summary(self) -> Markouts | None:
        """The report's view (None when no fill has a markout record yet)."""
        if not self.records:
            return None
        rows = [
            MarkoutHorizon(
                horizon_s=h,
                fills=a.n,
                mean_bp=a.mean,
                ci=a.interval(),
                maker_fills=m.n,
                maker_mean_bp=m.mean,
                taker_fills=t.n,
                taker_mean_bp=t.mean,
            )
            for h, a, m, t in zip(self.horizons_s, self._all, self._maker, self._taker, strict=True)
        ]
        return Markouts(
            records=self.records,
            reference=" and ".join(sorted(self.references)) or None,
            confidence=CONFIDENCE,
            horizons=rows,
        )


def fold(docs: Sequence[Mapping[str, Any]]) -> dict[str, MarkoutStats]:
    """``markouts`` records per strategy."""
    out: dict[str, MarkoutStats] = {}
    for doc in docs:
        out.setdefault(str(doc.get("strategy")), MarkoutStats()).add(doc)
    return out
