"""The tape memory's window (the last ``lookback_s`` or the last ``min_trades`` prints, whichever
reaches further back), per symbol, the same whether the trades come one by one (a venue with
orders working) or in one batch (a quiet venue)."""

from __future__ import annotations

from cryptoarena.data.records import NS_PER_S, SELL, Trade
from cryptoarena.trading.exchange.models import Side
from cryptoarena.trading.exchange.queues import TapeMemory

S = NS_PER_S
# BTC: three sellers hitting 100 at 0-2 s, one at 30 s; ETH prints in between.
TAPE = [
    Trade(0 * S, 100.0, 1.0, SELL, "1"),
    Trade(1 * S, 100.0, 2.0, SELL, "2"),
    Trade(1 * S, 50.0, 7.0, SELL, "e1", symbol="ETHUSDT"),
    Trade(2 * S, 100.0, 3.0, SELL, "3"),
    Trade(25 * S, 50.0, 8.0, SELL, "e2", symbol="ETHUSDT"),
    Trade(30 * S, 100.0, 4.0, SELL, "4"),
]


def _one_by_one() -> TapeMemory:
    memory = TapeMemory(lookback_s=10.0, min_trades=2)
    for trade in TAPE:
        memory.add(trade)
    return memory


def _batch() -> TapeMemory:
    memory = TapeMemory(lookback_s=10.0, min_trades=2)
    memory.add_many(TAPE)
    return memory


def test_the_window_is_the_same_one_by_one_and_in_a_batch() -> None:
    for memory in (_one_by_one(), _batch()):
        # At 30 s the 10 s window holds one BTC print; the last two prints reach back to 2 s.
        assert memory.printed_against("BTCUSDT", Side.BUY, 100.0, 30 * S) == 7.0
        # ETH's own two prints (the one at 1 s kept as one of its last two), apart from BTC's.
        assert memory.printed_against("ETHUSDT", Side.BUY, 50.0, 30 * S) == 15.0
        # Dropped for good: the prints at 0 and 1 s are not in BTC's tape any more.
        assert memory.printed_against("BTCUSDT", Side.BUY, 100.0, 2 * S) == 7.0
