"""A fair contest: every strategy of the example config gets the same fills alone as with all
the others (and in any order), through the real worker, paper exchange and journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.trading.config import ArenaConfig, load_arena_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.engine.session import ExchangeKind, make_exchange
from cryptoarena.trading.journal import Journal

from tests.integration.trading_kit import (
    ROOT,
    TrailingMoveSource,
    journal_settings,
    tape_slice,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

Fills = dict[str, list[tuple[Any, ...]]]


async def _fills(config: ArenaConfig, trades: pd.DataFrame, tmp: Path, run_id: str) -> Fills:
    """Run the worker on the paper exchange ``arena backtest`` builds; fills per strategy."""
    settings = journal_settings(tmp / run_id)
    clock = SimClock(int(trades["ts"].iloc[0]))
    exchange = make_exchange(settings, config, ExchangeKind.PAPER, clock, False)
    feed = ReplayFeed(trades, speed=None, batch_ms=100, max_batch=20)
    with Journal.open(settings, run_id=run_id) as journal:
        worker = Worker(config, feed=feed, exchange=exchange, journal=journal, clock=clock,
                        run_id=run_id, forecasts=TrailingMoveSource())  # fmt: skip
        await worker.run()
        journal.sync(30)
        out: Fills = {s.name: [] for s in config.strategies}
        for f in journal.find("fills", {"run_id": run_id}, sort=[("_id", 1)]):
            # In recording order. Client and exec ids carry the strategy's index: compare what the strategy got.
            row = (f["ts_ns"], f["side"], f["price"], f["qty"], f["fee"], f["is_maker"])
            out[f["strategy"]].append(row)
    return out


async def test_every_strategy_fills_the_same_alone_and_together(tmp_path: Path) -> None:
    config = load_arena_config(ROOT / "configs" / "arena.example.toml")
    trades = tape_slice(3600, 50)
    together = await _fills(config, trades, tmp_path, "together")
    reordered = config.model_copy(update={"strategies": list(reversed(config.strategies))})
    assert await _fills(reordered, trades, tmp_path, "reversed") == together
    traded = [name for name, rows in together.items() if rows]
    assert len(traded) >= 5, f"too few strategies traded to compare: {traded}"
    for spec in config.strategies:
        alone = config.model_copy(update={"strategies": [spec]})
        got = await _fills(alone, trades, tmp_path, f"alone-{spec.name}")
        assert got[spec.name] == together[spec.name], f"{spec.name} alone differs"
