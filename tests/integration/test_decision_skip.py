"""The decision step's skip of the router against asking it on every bar.

Most bars of a backtest change nothing: the strategy's target is where its book already is, or
its order is still in flight. The decision step (``Decider._no_order``) then does not ask the
router at all. Every strategy on 1-second bars over the same 10 minutes of the shipped day,
with the paper venue and the real embedded journal, twice: skipping, and with the skip turned
off (every target through ``OrderRouter.rebalance``, as the engine did before). Every journaled
document must be the same, in the same recording order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.trading.config import all_strategies_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.engine.decide import Decider
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.journal.schema import COLLECTIONS

from tests.integration.test_backtest_drive import RUN, InstantSource, assert_same_run
from tests.integration.trading_kit import journal_settings, tape_slice


async def _run(tmp: Any) -> tuple[Worker, dict[str, list[dict[str, Any]]]]:
    config = all_strategies_config(bar_size="1s", fee_rate=0.0001)
    trades = tape_slice(3600, 10)
    clock = SimClock(int(trades["ts"].iloc[0]))
    capital = Decimal(str(config.arena.capital * len(config.strategies)))
    exchange = PaperExchange(PaperExchangeConfig(initial_balance=capital), clock=clock)
    with Journal.open(journal_settings(tmp), run_id=RUN, clock=clock, bulk=True) as journal:
        worker = Worker(config, feed=ReplayFeed(trades), exchange=exchange, journal=journal,
                        clock=clock, run_id=RUN, forecasts=InstantSource())  # fmt: skip
        assert worker.sync
        await worker.run()
        assert journal.sync(30)
        docs = {coll: journal.find(coll, sort=[("seq", 1), ("_id", 1)]) for coll in COLLECTIONS}
    return worker, docs


@pytest.mark.slow
async def test_skipping_the_router_journals_what_asking_it_every_bar_journals(
    tmp_path, monkeypatch
) -> None:
    skipping, fast = await _run(tmp_path / "skip")
    with monkeypatch.context() as patch:
        patch.setattr(Decider, "_no_order", lambda *_: False)
        asking, slow = await _run(tmp_path / "ask")
    # The skip happened on most decisions, and the run trades (orders, fills, follow-ups).
    assert asking.decider.skipped == 0
    assert skipping.decider.skipped > skipping.result.decisions // 2, skipping.decider.skipped
    counts = {coll: len(rows) for coll, rows in fast.items()}
    for coll in ("decisions", "orders", "order_updates", "fills", "follow_ups", "equity"):
        assert counts[coll] > 0, counts
    assert dict(skipping.result.journaled) == dict(asking.result.journaled)
    assert_same_run(slow, fast, asking.books, skipping.books)
