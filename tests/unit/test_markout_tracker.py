"""The engine's markout tracker (execution/markouts.py) on hand-made tapes: the worked markouts
of a buy 10 bp under the price 5 s later, the rule of results/markouts.py, the mid of a recorded
book, horizons past the end, bounded memory, a bar run's unknowns, and the report's aggregate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from cryptoarena.data.book_replay import BookTape
from cryptoarena.data.records import Trade
from cryptoarena.trading.exchange.models import Fill, Side
from cryptoarena.trading.execution.markouts import (
    ENDED,
    NO_TICKS,
    UNSEEN,
    MarkoutPrices,
    MarkoutTracker,
)
from cryptoarena.trading.results.markouts import MarkoutStats, markouts_bps

S = 1_000_000_000
T0 = 1_700_000_000 * S


class Journaled(list[tuple[str, dict[str, Any]]]):
    """The tracker's journal door: what it recorded, in order."""

    def __call__(self, kind: str, doc: dict[str, Any]) -> str:
        self.append((kind, doc))
        return str(len(self))

    def docs(self) -> list[dict[str, Any]]:
        assert {kind for kind, _ in self} <= {"markouts"}
        return [doc for _, doc in self]


def fill(side: Side, price: float, ts: int, *, maker: bool = False, n: int = 0) -> Fill:
    return Fill(f"e{n}", f"c{n}", f"x{n}", "BTCUSDT", side, Decimal(str(price)),
                Decimal("0.01"), Decimal(0), maker, ts)  # fmt: skip


def trade(ts: int, price: float) -> Trade:
    return Trade(ts, price, 0.01, 1, str(ts))


def tape_rising_after_5s() -> list[Trade]:
    """100.00 every half second, 100.10 (+10 bp) from 5 s after T0 on, to 20 s."""
    return [trade(T0 + k * S // 2, 100.0 if k < 10 else 100.1) for k in range(41)]


def test_a_buy_10bp_below_the_price_5s_later_has_the_worked_markouts() -> None:
    journaled = Journaled()
    tracker = MarkoutTracker(journaled)
    tape = tape_rising_after_5s()
    tracker.on_trades(tape[:1])
    tracker.on_fill("buyer", fill(Side.BUY, 100.0, T0, n=1))
    tracker.on_fill("seller", fill(Side.SELL, 100.0, T0, maker=True, n=2))
    for k in range(1, len(tape), 3):  # batches of any size
        tracker.on_trades(tape[k : k + 3])
    tracker.close()
    buy, sell = sorted(journaled.docs(), key=lambda d: d["side"])
    assert buy["strategy"] == "buyer" and buy["side"] == "Buy" and buy["exec_id"] == "e1"
    # 1 s: still 100.00; 5 s: the print at exactly 5 s, 100.10; 15 s: 100.10.
    assert buy["ref_px"] == [100.0, 100.1, 100.1]
    assert buy["ref"] == ["trade"] * 3
    assert buy["bps"] == pytest.approx([0.0, 10.0, 10.0], abs=1e-9)
    assert sell["bps"] == pytest.approx([0.0, -10.0, -10.0], abs=1e-9)
    assert sell["is_maker"] is True and buy["missing"] is None
    assert buy["ts_ns"] == buy["fill_ts_ns"] == T0
    # The same numbers as the whole-tape computation (one rule).
    whole = markouts_bps(np.array([T0, T0]), np.array([100.0, 100.0]), np.array([1, -1]),
                         np.array([t.ts for t in tape]), np.array([t.price for t in tape]))  # fmt: skip
    assert buy["bps"] + sell["bps"] == pytest.approx(whole.ravel().tolist(), abs=1e-9)


def test_the_mid_of_a_recorded_book_is_the_reference_where_it_has_one() -> None:
    one = np.ones((2, 1))
    book = BookTape(ts=np.array([T0 + 4 * S, T0 + 10 * S]), bid_px=np.array([[100.0], [100.2]]),
                    bid_sz=one, ask_px=np.array([[100.2], [100.4]]), ask_sz=one)  # fmt: skip
    journaled = Journaled()
    tracker = MarkoutTracker(journaled, MarkoutPrices(book=book))
    tape = tape_rising_after_5s()
    tracker.on_trades(tape[:1])
    tracker.on_fill("buyer", fill(Side.BUY, 100.0, T0))
    tracker.on_trades(tape[1:])
    tracker.close()
    (doc,) = journaled.docs()
    # No snapshot before 4 s: the 1 s horizon reads the last trade; then the mid.
    assert doc["ref"] == ["trade", "mid", "mid"]
    assert doc["ref_px"] == pytest.approx([100.0, 100.1, 100.3])
    assert doc["bps"] == pytest.approx([0.0, 10.0, 30.0])


def test_a_horizon_past_the_end_of_the_run_is_none_and_says_so() -> None:
    journaled = Journaled()
    tracker = MarkoutTracker(journaled)
    tape = tape_rising_after_5s()  # ends at 20 s
    tracker.on_trades(tape[:21])
    tracker.on_fill("late", fill(Side.BUY, 100.0, T0 + 10 * S))
    tracker.on_trades(tape[21:])
    assert journaled.docs() == [] and tracker.pending == 1  # the 15 s horizon is still ahead
    tracker.close()
    (doc,) = journaled.docs()
    assert doc["bps"][:2] == pytest.approx([10.0, 10.0])
    assert doc["bps"][2] is None and doc["ref_px"][2] is None
    assert doc["missing"] == ENDED
    assert tracker.pending == 0


def test_a_fill_before_any_trade_seen_has_no_reference() -> None:
    # A live restart: the tracker saw nothing at the horizons that passed while it was down.
    journaled = Journaled()
    tracker = MarkoutTracker(journaled)
    tracker.on_fill("s", fill(Side.BUY, 100.0, T0))
    tracker.on_trades([trade(T0 + 30 * S, 101.0)])
    (doc,) = journaled.docs()
    assert doc["bps"] == [None, None, None] and doc["missing"] == UNSEEN


def test_only_the_last_15s_of_fills_are_held() -> None:
    journaled = Journaled()
    tracker = MarkoutTracker(journaled)
    every = S // 10
    for k in range(6_000):  # ten minutes, a fill every 100 ms
        ts = T0 + k * every
        tracker.on_trades([trade(ts, 100.0 + (k % 7) * 0.01)])
        tracker.on_fill("busy", fill(Side.BUY if k % 2 else Side.SELL, 100.0, ts, n=k))
        assert tracker.pending <= 15 * S // every + 1
    assert tracker.peak_pending == 15 * S // every + 1
    tracker.close()
    assert tracker.pending == 0 and len(journaled.docs()) == 6_000


def test_a_bar_run_records_every_markout_as_unknown_at_once() -> None:
    journaled = Journaled()
    tracker = MarkoutTracker(journaled, MarkoutPrices(ticks=False))
    tracker.on_fill("bars", fill(Side.BUY, 100.0, T0))
    (doc,) = journaled.docs()
    assert doc["bps"] == [None, None, None] and doc["missing"] == NO_TICKS
    assert tracker.pending == 0


def test_the_aggregate_gives_means_counts_and_a_normal_interval() -> None:
    journaled = Journaled()
    tracker = MarkoutTracker(journaled)
    tape = tape_rising_after_5s()
    tracker.on_trades(tape[:1])
    for n in range(3):
        tracker.on_fill("s", fill(Side.BUY, 100.0, T0, n=n))
    tracker.on_fill("s", fill(Side.SELL, 100.0, T0, maker=True, n=9))
    tracker.on_trades(tape[1:])
    tracker.close()
    stats = MarkoutStats()
    for doc in journaled.docs():
        stats.add(doc)
    summary = stats.summary()
    assert summary is not None and summary.records == 4 and summary.reference == "trade"
    five = summary.horizons[1]
    assert five.horizon_s == 5 and five.fills == 4
    assert five.mean_bp == pytest.approx((3 * 10.0 - 10.0) / 4)
    assert (five.taker_fills, five.maker_fills) == (3, 1)
    assert five.taker_mean_bp == pytest.approx(10.0) and five.maker_mean_bp == pytest.approx(-10.0)
    # mean ± 1.96 s/√n, s the sample standard deviation of (10, 10, 10, -10).
    half = 1.959963984540054 * np.std([10.0, 10.0, 10.0, -10.0], ddof=1) / 2
    assert five.ci == pytest.approx((5.0 - half, 5.0 + half))
    assert MarkoutStats().summary() is None
