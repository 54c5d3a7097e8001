"""SMA 5/20 on 1-second bars through the engine against an independent vectorised oracle.

The oracle is written from the documented rules, not from engine code:

- bars (DESIGN.md, docs/trading.md): 1-second bars from the trades; a quiet second is an
  explicit bar at the last price; a bar closes at the next second's tick; the bar of the last
  second never closes;
- the strategy: long while SMA(5) of the closes is above SMA(20), flat (no shorts here) while
  below, nothing on a tie; no decision during the warm-up of 20 bars;
- the engine: a decision at the tick closing a bar moves the book toward the target at the last
  trade price (rounded down to the 0.001 BTC step); one order in flight per strategy: the next
  is sent at the first tick after the venue reported the last one done; an order unfilled after
  ``order_timeout_s`` is cancelled at that tick;
- the paper venue (docs/exchange.md): a market order arrives ``latency_ms`` (50) after it was
  sent and takes the trades from its arrival on whose taker side is its own, at each trade's
  price; taker fee 0.055 %.

Sizes are kept at the 0.001 BTC minimum (``size`` 0.0015 of 10,000 USDT) so each order fills on
one print, and the risk limits are opened up: the oracle checks the fill rule and the engine's
timing, not the risk manager (tested on its own).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from cryptoarena.clock import SimClock
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig

from tests.integration.trading_kit import tape_slice

NS = 1_000_000_000
LATENCY_NS = 50_000_000
TIMEOUT_S = 10
STEP = 0.001
TAKER = 0.00055


def oracle(
    trades: pd.DataFrame, fast: int = 5, slow: int = 20, *, ties: bool = False
) -> pd.DataFrame:
    """The fills SMA fast/slow (long/flat) must get on ``trades``: (ts_ns, side, price, qty).
    With ``ties``, exact ties may occur (no opinion there: nothing is sent)."""
    ts = trades["ts"].to_numpy(np.int64)
    px = trades["price"].to_numpy(np.float64)
    taker = trades["side"].to_numpy(np.int8)
    sec = ts // NS
    grid = np.arange(sec[0], sec[-1])  # every closed bar: the last second's never closes
    last = np.searchsorted(sec, grid, side="right") - 1  # last trade at or before each bar
    close = px[last]
    # Sums in integer cents: exact, so "above", "below" and a tie mean what they say.
    cents = np.concatenate(([0], np.cumsum(np.rint(close * 100).astype(np.int64))))
    i = np.arange(len(grid))
    ok = i >= slow  # bars 0..slow-1 only warm the strategy up
    sum_f = np.where(i + 1 >= fast, cents[i + 1] - cents[np.maximum(i + 1 - fast, 0)], 0)
    sum_s = np.where(i + 1 >= slow, cents[i + 1] - cents[np.maximum(i + 1 - slow, 0)], 0)
    diff = slow * sum_f - fast * sum_s  # sign of SMA(fast) - SMA(slow)
    assert ties or not np.any(ok & (diff == 0)), "pick a slice without exact ties"
    want = np.where(diff > 0, 1, 0)  # long or flat
    act = ok & (diff != 0)  # a tie is no opinion: nothing is sent on it
    ticks = (grid + 1) * NS  # the tick that closes each bar
    by_side = {s: (ts[taker == s], px[taker == s]) for s in (1, -1)}
    fills: list[tuple[int, str, float, float]] = []
    held, free_from = 0, 0
    k = int(np.argmax(ok))
    while True:
        # The next tick, from when the strategy is free, whose target differs from the book.
        todo = np.flatnonzero(act[k:] & (want[k:] != held) & (ticks[k:] >= free_from))
        if len(todo) == 0:
            break
        k += int(todo[0])
        sent = int(ticks[k])
        side = 1 if want[k] > held else -1
        t_side, p_side = by_side[side]
        j = int(np.searchsorted(t_side, sent + LATENCY_NS, side="left"))
        if j < len(t_side) and t_side[j] < sent + TIMEOUT_S * NS:
            fills.append((int(t_side[j]), "Buy" if side == 1 else "Sell", float(p_side[j]), STEP))
            held = want[k]
            free_from = (int(t_side[j]) // NS + 1) * NS  # the first tick after the fill
        elif j < len(t_side) or sent + TIMEOUT_S * NS <= ticks[-1]:
            free_from = sent + (TIMEOUT_S + 1) * NS  # cancelled at the timeout's tick
        else:
            break  # still working when the tape ends
        k += 1
    return pd.DataFrame(fills, columns=["ts_ns", "side", "price", "qty"])


class Fills:
    """A journal that keeps only the fills (the engine's own accounting is not under test)."""

    bulk = False  # events one by one (engine/ports.JournalWriter)

    def __init__(self) -> None:
        self.fills: list[dict[str, Any]] = []
        self.n = 0

    def backlog(self) -> int:
        return 0

    def record(self, kind: str, doc: dict[str, Any]) -> str:
        self.n += 1
        if kind == "fills":
            self.fills.append(doc)
        return str(self.n)

    def find(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []

    def sent_client_ids(self, run_id: str) -> set[str]:
        return set()

    def checkpoint_ns(self, run_id: str) -> int:
        return 0

    def upsert_summary(self, *args: Any) -> None:
        return None

    def flush(self, *args: Any) -> bool:
        return True


async def run_sma(trades: pd.DataFrame, run_id: str) -> tuple[pd.DataFrame, Fills]:
    """SMA 5/20 long/flat on 1 s bars of ``trades`` through the engine and the paper venue:
    its fills as (ts_ns, side, price, qty), and the journal that kept them."""
    config = parse_arena_config(
        {
            "arena": {"min_trade_fraction": 0.0, "order_timeout_s": TIMEOUT_S},
            "risk": {
                "strategy": {"max_orders_per_minute": 10_000},
                "global": {
                    "max_orders_per_minute": 10_000,
                    "price_band_bps": 1e6,
                    "max_data_age_s": 1e9,
                },
            },
            "strategy": [
                {
                    "name": "sma",
                    "kind": "sma_cross",
                    "params": {
                        "fast": 5,
                        "slow": 20,
                        "bar_size": "1s",
                        "size": 0.0015,
                        "allow_short": False,
                    },
                }
            ],
        }
    )
    clock = SimClock(int(trades["ts"].iloc[0]))
    exchange = PaperExchange(PaperExchangeConfig(initial_balance=Decimal(10_000)), clock=clock)
    journal = Fills()
    worker = Worker(config, feed=ReplayFeed(trades), exchange=exchange, journal=journal,
                    clock=clock, run_id=run_id)  # fmt: skip
    assert worker.sync
    await worker.run()
    got = pd.DataFrame(
        {
            "ts_ns": [f["ts_ns"] for f in journal.fills],
            "side": [f["side"] for f in journal.fills],
            "price": [float(f["price"]) for f in journal.fills],
            "qty": [float(f["qty"]) for f in journal.fills],
        }
    )
    return got, journal


async def test_sma_fills_on_one_second_bars_equal_the_vectorised_oracle() -> None:
    # 40 minutes without an exact SMA tie (where float rounding decides either way)
    trades = tape_slice(60_540, 40)
    got, journal = await run_sma(trades, "oracle")
    want = oracle(trades)
    assert len(want) > 40, "too few fills to say anything"
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    fees = [Decimal(f["fee"]) for f in journal.fills]
    expected = [Decimal(str(p)) * Decimal("0.001") * Decimal(str(TAKER)) for p in want["price"]]
    assert all(abs(a - b) < Decimal("1e-8") for a, b in zip(fees, expected, strict=True))
