"""The sizing rule's float pre-check is written once (``decide.may_size_order``): its vectorised
twin answers the same element by element, and the bar drive's per-bar and per-span pre-checks
are that rule, also where the equity is too near zero for a float to tell its sign."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.config import get_settings
from cryptoarena.trading.engine.bar_drive import BarDrive
from cryptoarena.trading.engine.decide import NEAR_ZERO_EQUITY, may_size_order, may_size_orders
from cryptoarena.trading.journal import Journal

MIN_FRACTION, MIN_QTY = 0.05, 0.001
PRICES = [0.5, 100.0, 50_000.0]
TARGETS = [0.0, 1.0, -1.0, 0.3, 1e-4, float("nan")]
# (cash less fees, size): flat, long, short, equity just above / at / just below zero, within
# the near-zero band on both sides, and deep below it.
BOOKS = [
    (10_000.0, 0.0),
    (0.0, 0.2),
    (20_000.0, -0.2),
    (2 * NEAR_ZERO_EQUITY, 0.0),
    (NEAR_ZERO_EQUITY, 0.0),
    (NEAR_ZERO_EQUITY / 2, 0.0),
    (0.0, 0.0),
    (-NEAR_ZERO_EQUITY / 2, 0.0),
    (-NEAR_ZERO_EQUITY, 0.0),
    (-100.0, 0.001),
    (-50_000.0, 0.5),
]


def _scalar(cash: float, qty: float, targets: list[float], prices: list[float]) -> list[bool]:
    return [
        may_size_order(cash, qty, t, p, MIN_FRACTION, MIN_QTY)
        for t, p in zip(targets, prices, strict=True)
    ]


def test_the_near_zero_band_asks_the_router_and_below_it_no_order_is_possible() -> None:
    assert may_size_order(NEAR_ZERO_EQUITY / 2, 0.0, 1.0, 100.0, MIN_FRACTION, MIN_QTY)
    assert may_size_order(-NEAR_ZERO_EQUITY / 2, 0.0, 1.0, 100.0, MIN_FRACTION, MIN_QTY)
    assert not may_size_order(-1.0, 0.0, 1.0, 100.0, MIN_FRACTION, MIN_QTY)
    assert not may_size_order(10_000.0, 0.0, 1e-4, 100.0, MIN_FRACTION, MIN_QTY)  # too small


def test_the_vectorised_twin_answers_as_the_rule_element_by_element() -> None:
    pairs = list(itertools.product(TARGETS, PRICES))
    targets = [t for t, _ in pairs]
    prices = [p for _, p in pairs]
    for cash, qty in BOOKS:
        got = may_size_orders(
            cash, qty, np.array(targets), np.array(prices), MIN_FRACTION, MIN_QTY
        ).tolist()
        assert got == _scalar(cash, qty, targets, prices), (cash, qty)


def _klines(t0: int, closes: list[float]) -> pd.DataFrame:
    n = len(closes)
    return pd.DataFrame(
        {
            "ts": [t0 + i * 60 * 10**9 for i in range(n)],
            **{c: closes for c in ("open", "high", "low", "close", "vwap")},
            "volume": [1.0] * n,
            "trades": [1] * n,
            "buy_volume": [0.5] * n,
            "sell_volume": [0.5] * n,
        }
    )


@pytest.fixture
def drive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BarDrive]:
    """A bar drive over three klines (not run), with the limits a run reads from its router."""
    from cryptoarena.clock import SimClock
    from cryptoarena.trading.config import parse_arena_config
    from cryptoarena.trading.engine import Worker
    from cryptoarena.trading.engine.bar_drive import NoFeed, PulledUpdates
    from cryptoarena.trading.exchange.paper import PaperExchange
    from cryptoarena.trading.exchange.paper import PaperExchangeConfig as Fill

    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ARENA_TRADING__KILL_FILE", str(tmp_path / "kill"))
    get_settings.cache_clear()
    t0 = 1_717_200_000 * 10**9
    bars = _klines(t0, [100.0, 101.0, 102.0])
    config = parse_arena_config(
        {"strategy": [{"name": "sma", "kind": "sma_cross", "params": {"bar_size": "1m"}}]}
    )
    clock = SimClock(t0)
    stream = PulledUpdates()
    exchange = PaperExchange(Fill(name="bars"), clock=clock, updates=stream)
    with Journal.open(get_settings(), run_id="pre", clock=clock, bulk=True) as journal:
        worker = Worker(config, feed=NoFeed("BTCUSDT"), exchange=exchange, journal=journal,
                        clock=clock, run_id="pre")  # fmt: skip
        d = BarDrive(worker, exchange, stream, bars, progress=False)
        d.min_fraction, d.instrument_min_qty = MIN_FRACTION, MIN_QTY
        yield d
    get_settings.cache_clear()


def test_the_bar_drives_pre_checks_are_the_decision_steps_rule(drive: BarDrive) -> None:
    lane = drive.lanes[0]
    lane.fills_seen = lane.book.fills  # the book's floats are the ones set below
    pairs = list(itertools.product(TARGETS, PRICES))
    n = len(pairs)
    lane.target_arr = np.array([t for t, _ in pairs])
    lane.closes = np.ones(n, dtype=bool)
    drive.close_arr = np.array([p for _, p in pairs])
    for cash, qty in BOOKS:
        lane.cash, lane.qty = cash, qty
        rule = _scalar(cash, qty, [t for t, _ in pairs], [p for _, p in pairs])
        # A NaN target: no decision of the strategy closes at that bar, nothing to pre-check.
        want = [w and t == t for w, (t, _) in zip(rule, pairs, strict=True)]
        assert [drive._wants(lane, t, p) for t, p in pairs] == want, (cash, qty)
        for i in range(n):
            first = next((k for k in range(i, n) if want[k]), n)
            assert i + drive._first_want(lane, i, n) == first, (cash, qty, i)
