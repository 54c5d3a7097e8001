"""Markouts in the running engine: a replay of the shipped real day journals one ``markouts``
record per fill, equal to the whole-tape computation, and the report shows them; a run that
crashes with fills still waiting for their horizons and is resumed journals each of those
markouts once, equal to the uninterrupted run's."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.trading.config import all_strategies_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.results.markouts import markouts_bps
from cryptoarena.trading.results.model import RunReport
from cryptoarena.trading.results.render import render_json, render_markdown, render_table
from cryptoarena.trading.results.source import build_report
from rich.console import Console

from tests.integration.trading_kit import CallbackFeed, journal_settings, tape_slice

pytestmark = pytest.mark.slow

START_S, MINUTES = 3600, 8


class Crash(RuntimeError):
    pass


def _worker(journal: Journal, trades: Any, run_id: str, on_batch: Any = None) -> Worker:
    config = all_strategies_config(bar_size="10s", fee_rate=0.0001)
    clock = SimClock(int(trades["ts"].iloc[0]))
    capital = Decimal(str(config.arena.capital * len(config.strategies)))
    exchange = PaperExchange(PaperExchangeConfig(initial_balance=capital), clock=clock)
    feed: Any = ReplayFeed(trades, batch_ms=100, max_batch=20)
    if on_batch is not None:
        feed = CallbackFeed(feed, on_batch)
    return Worker(config, feed=feed, exchange=exchange, journal=journal, clock=clock,
                  run_id=run_id)  # fmt: skip


def _key(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (doc["strategy"], doc["fill_ts_ns"], doc["side"], doc["price"], doc["qty"])


async def test_every_fill_gets_its_markouts_and_the_report_shows_them(tmp_path: Path) -> None:
    trades = tape_slice(START_S, MINUTES)
    with Journal.open(journal_settings(tmp_path), run_id="mk") as journal:
        worker = _worker(journal, trades, "mk")
        await worker.run()
        assert journal.sync(30)
        fills = journal.find("fills", {"run_id": "mk"})
        marks = journal.find("markouts", {"run_id": "mk"}, sort=[("ts_ns", 1), ("seq", 1)])
        report = build_report(journal, "mk")
    assert len(fills) > 20, "the slice must trade for the test to mean anything"
    assert Counter(m["exec_id"] for m in marks) == Counter(f["exec_id"] for f in fills)
    # At most the fills of the last 15 s were held at once.
    assert 0 < worker.markouts.peak_pending < len(fills) and worker.markouts.pending == 0
    side = np.array([1 if m["side"] == "Buy" else -1 for m in marks])
    whole = markouts_bps(np.array([m["fill_ts_ns"] for m in marks]),
                         np.array([m["price"] for m in marks]), side,
                         trades["ts"].to_numpy(), trades["price"].to_numpy())  # fmt: skip
    got = np.array([[np.nan if b is None else b for b in m["bps"]] for m in marks])
    np.testing.assert_allclose(got, whole, rtol=0, atol=1e-9)
    assert np.isnan(got[:, 2]).any(), "fills in the last 15 s have no 15 s markout"
    # The report: each trading strategy's mean markouts, with their counts.
    traded = {f["strategy"] for f in fills}
    rows = {r.name: r for r in report.strategies}
    for name in traded:
        mk = rows[name].markouts
        assert mk is not None and mk.reference == "trade"
        n = sum(1 for m in marks if m["strategy"] == name and m["bps"][1] is not None)
        assert mk.horizons[1].fills == n
    console = Console(record=True, width=200)
    render_table(console, report)
    text = console.export_text()
    assert "fill markouts (bp)" in text and "(n " in text
    markdown = render_markdown(report, tmp_path / "md").read_text()
    assert "## Fill markouts (bp)" in markdown
    assert RunReport.model_validate_json(render_json(report)) == report


async def test_a_resumed_run_neither_loses_nor_doubles_waiting_markouts(tmp_path: Path) -> None:
    trades = tape_slice(START_S, MINUTES)
    with Journal.open(journal_settings(tmp_path / "whole"), run_id="mk") as journal:
        await _worker(journal, trades, "mk").run()
        assert journal.sync(30)
        whole = {_key(m): m for m in journal.find("markouts", {"run_id": "mk"})}

    settings = journal_settings(tmp_path / "resumed")
    waiting: list[int] = []
    half = len(trades) // 2
    with Journal.open(settings, run_id="mk") as journal:
        box: dict[str, Worker] = {}

        def crash_when_fills_wait(index: int) -> None:
            # Past half way, at a moment when fills wait for their horizons.
            tracker = box["w"].markouts
            if box["w"].result.trades > half and tracker.pending > 0:
                waiting.append(tracker.pending)
                raise Crash("crash with markouts pending")

        box["w"] = _worker(journal, trades, "mk", crash_when_fills_wait)
        with pytest.raises(Crash):
            await box["w"].run()
        assert journal.sync(30)
        done = {m["exec_id"] for m in journal.find("markouts", {"run_id": "mk"})}
        waited = {f["exec_id"] for f in journal.find("fills", {"run_id": "mk"})} - done
    assert waiting and len(waited) == waiting[0] > 0, "fills must wait at the crash"
    with Journal.open(settings, run_id="mk") as journal:
        resumed = _worker(journal, trades, "mk")
        await resumed.run()
        assert journal.sync(30)
        fills = journal.find("fills", {"run_id": "mk"})
        marks = journal.find("markouts", {"run_id": "mk"})
    assert resumed.result.restored["markouts_pending"] == len(waited)
    # Every fill once, none twice.
    assert Counter(m["exec_id"] for m in marks) == Counter(f["exec_id"] for f in fills)
    # The markouts of the fills that waited at the crash equal the uninterrupted run's.
    for m in (m for m in marks if m["exec_id"] in waited):
        theirs = whole[_key(m)]
        assert (m["bps"], m["ref"], m["missing"]) == (
            theirs["bps"],
            theirs["ref"],
            theirs["missing"],
        )
