"""The backtest's synchronous drive and bulk journal against the async (live-mode) route.

The same 10 minutes of the shipped real day, every strategy (the AI arm fed by an in-process
forecaster that never waits), the paper venue and the real embedded journal, twice: once as a
backtest (synchronous drive, ``Journal.open(bulk=True)``, the Recorder buffering) and once
through the async route live trading takes (a task consuming the venue's updates, per-event
journal upserts). Every collection must hold the same documents, in the same recording order.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

import pytest
from cryptoarena.clock import SimClock
from cryptoarena.data.feed import LIVE_FEED, FeedCapabilities
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.serving.client import ForecastCapabilities
from cryptoarena.trading.config import all_strategies_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.engine.worker import KILL_POLL_SYNC_S
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.journal.schema import COLLECTIONS
from cryptoarena.trading.results.source import build_report

from tests.integration.test_backtest_oracle import Fills
from tests.integration.trading_kit import TrailingMoveSource, journal_settings, tape_slice

RUN = "drive"
# Fields that legitimately differ between two runs of the same replay (nothing else may):
# - the journal session, part of every event id (``<run>:<session>:<seq>``) and of the ids
#   that point at events (decision_id, event_id): the wall-clock time the journal opened;
# - the incarnation (wall-clock time the worker started) and the ids derived from it: client
#   order ids carry it, and the paper venue's order and execution ids are hashed from those.
VOLATILE = ("incarnation", "exchange_id", "order_id", "exec_id")


class InstantSource(TrailingMoveSource):
    # In-process and instant: the backtest is driven synchronously.
    capabilities = ForecastCapabilities(waits=False)


async def _run(tmp, *, sync: bool, bulk: bool, minutes: float = 10) -> tuple[Worker, dict]:
    config = all_strategies_config(bar_size="10s", fee_rate=0.0001)
    trades = tape_slice(3600, minutes)
    clock = SimClock(int(trades["ts"].iloc[0]))
    n = len(config.strategies)
    exchange = PaperExchange(
        PaperExchangeConfig(initial_balance=Decimal(str(config.arena.capital * n))), clock=clock
    )
    with Journal.open(journal_settings(tmp), run_id=RUN, clock=clock, bulk=bulk) as journal:
        worker = Worker(config, feed=ReplayFeed(trades), exchange=exchange, journal=journal,
                        clock=clock, run_id=RUN, forecasts=InstantSource(), sync=sync)  # fmt: skip
        await worker.run()
        assert journal.sync(30)
        docs = {coll: journal.find(coll, sort=[("seq", 1), ("_id", 1)]) for coll in COLLECTIONS}
        docs["report"] = [build_report(journal, RUN).model_dump()]
    return worker, docs


def _normalise(docs: dict[str, list[dict[str, Any]]], session_of: str) -> dict[str, Any]:
    session = re.compile(re.escape(f"{RUN}:{session_of}:"))
    incarnation = re.compile(r"^([0-9a-f]+-\d\d)-[0-9a-z]+-")

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return incarnation.sub(r"\1-I-", session.sub(f"{RUN}:S:", value))
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {coll: [clean(d) for d in rows] for coll, rows in docs.items()}


def _session(docs: dict[str, list[dict[str, Any]]]) -> str:
    return str(docs["runs"][0]["_id"]).split(":")[1]


def assert_same_run(
    x: dict[str, list[dict[str, Any]]],
    y: dict[str, list[dict[str, Any]]],
    x_books: dict[str, Any],
    y_books: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two runs journaled the same documents in the same order (session ids masked) and booked
    the same fills into the same books; their normalised documents, for further checks."""
    a, b = _normalise(x, _session(x)), _normalise(y, _session(y))
    for coll in COLLECTIONS:
        assert len(a[coll]) == len(b[coll]), coll
        for p, q in zip(a[coll], b[coll], strict=True):
            assert p == q, coll
    for name, book in y_books.items():
        other = x_books[name]
        assert (book.qty, book.cash, book.fees, book.fills) == (
            other.qty,
            other.cash,
            other.fees,
            other.fills,
        )
    return a, b


@pytest.mark.slow
async def test_backtest_journals_the_documents_of_the_live_route(tmp_path) -> None:
    live_worker, live = await _run(tmp_path / "live", sync=False, bulk=False)
    back_worker, back = await _run(tmp_path / "back", sync=True, bulk=True)
    assert not live_worker.sync and back_worker.sync
    assert back_worker.record.buffered and not live_worker.record.buffered
    # A run that trades: every kind of event is there to compare.
    counts = {coll: len(rows) for coll, rows in back.items()}
    for coll in ("decisions", "orders", "order_updates", "fills", "predictions", "equity"):
        assert counts[coll] > 0, counts
    assert counts["summaries"] == len(back_worker.books)
    assert dict(back_worker.result.journaled) == dict(live_worker.result.journaled)
    a, b = assert_same_run(live, back, live_worker.books, back_worker.books)
    assert a["report"][0]["strategies"] == b["report"][0]["strategies"]


def test_the_drive_is_chosen_by_capability() -> None:
    config = all_strategies_config(bar_size="10s")
    trades = tape_slice(3600, 1)
    clock = SimClock(int(trades["ts"].iloc[0]))

    def worker(feed: Any, source: Any, sync: bool | None = None) -> Worker:
        exchange = PaperExchange(clock=clock)
        return Worker(config, feed=feed, exchange=exchange, journal=Fills(), clock=clock,
                      run_id=RUN, forecasts=source, sync=sync)  # fmt: skip

    assert worker(ReplayFeed(trades), InstantSource()).sync
    assert worker(ReplayFeed(trades), None).sync
    # A forecast source that may wait (a model server, inference in a thread), a replay at a
    # speed: the async route.
    assert not worker(ReplayFeed(trades), TrailingMoveSource()).sync
    assert not worker(ReplayFeed(trades, speed=50.0), None).sync
    with pytest.raises(ValueError, match="may wait"):
        worker(ReplayFeed(trades), TrailingMoveSource(), sync=True)
    # Orders that wait for their journal record to be durable (real venues) wait.
    durable = Worker(config, feed=ReplayFeed(trades), exchange=PaperExchange(clock=clock),
                     journal=Fills(), clock=clock, run_id=RUN, durable_orders=True)  # fmt: skip
    assert not durable.sync


class Shaped:
    """A replay's shape (``batches``, ``speed``, ``span_ns``) with ``declared`` capabilities."""

    def __init__(self, feed: ReplayFeed, declared: FeedCapabilities) -> None:
        self.feed, self.capabilities = feed, declared
        self.symbol, self.gaps, self.speed, self.span_ns = feed.symbol, feed.gaps, None, 0

    def batches(self) -> Any:
        return self.feed.batches()

    def __aiter__(self) -> Any:
        return self.feed.__aiter__()

    async def close(self) -> None:
        await self.feed.close()


def test_the_worker_reads_the_feeds_declaration_not_its_shape() -> None:
    config = all_strategies_config(bar_size="10s")
    trades = tape_slice(3600, 1)
    clock = SimClock(int(trades["ts"].iloc[0]))

    def worker(declared: FeedCapabilities) -> Worker:
        return Worker(config, feed=Shaped(ReplayFeed(trades), declared),
                      exchange=PaperExchange(clock=clock), journal=Fills(), clock=clock,
                      run_id=RUN)  # fmt: skip

    # Shaped like an as-fast-as-possible replay, declared live: driven and journaled as live.
    live = worker(LIVE_FEED)
    assert not live.sync and not live.backtest
    assert live.duties.journal_every_s == config.arena.equity_every_s
    # Declared a backtest over 6 hours (its span_ns attribute says 0): about 1,440 equity
    # snapshots a strategy over the declared span, every 15 s.
    six_hours = FeedCapabilities(as_fast_as_possible=True, batches=True, span_ns=6 * 3600 * 10**9)
    back = worker(six_hours)
    assert back.sync and back.backtest
    assert back.duties.journal_every_s == pytest.approx(15.0)


class CrashingFeed:
    """A replay whose batches break off with an error after ``after`` batches."""

    def __init__(self, feed: ReplayFeed, after: int) -> None:
        self.feed, self.after = feed, after
        self.symbol, self.gaps = feed.symbol, feed.gaps
        self.capabilities = FeedCapabilities(as_fast_as_possible=True, batches=True)

    def batches(self) -> Any:
        for i, batch in enumerate(self.feed.batches()):
            if i == self.after:
                raise OSError("disk gone")
            yield batch

    async def close(self) -> None:
        await self.feed.close()


async def test_a_crashed_backtest_loses_no_buffered_event(tmp_path) -> None:
    config = all_strategies_config(bar_size="10s", fee_rate=0.0001)
    trades = tape_slice(3600, 5)
    clock = SimClock(int(trades["ts"].iloc[0]))
    exchange = PaperExchange(
        PaperExchangeConfig(initial_balance=Decimal(str(config.arena.capital * 9))), clock=clock
    )
    feed = CrashingFeed(ReplayFeed(trades), after=100)
    with Journal.open(journal_settings(tmp_path), run_id=RUN, clock=clock, bulk=True) as journal:
        worker = Worker(config, feed=feed, exchange=exchange, journal=journal, clock=clock,
                        run_id=RUN, forecasts=InstantSource())  # fmt: skip
        assert worker.sync and worker.record.buffered
        with pytest.raises(OSError, match="disk gone"):
            await worker.run()
        assert journal.sync(30)
        for kind, n in worker.result.journaled.items():
            assert journal.count(kind, {"run_id": RUN}) == n, kind
        stopped = journal.runs(RUN)[-1]
        assert stopped["event"] == "stopped" and stopped["ended_by"] == "crash"


@pytest.mark.slow
async def test_the_report_reads_a_backtest_journaled_at_its_coarser_interval(tmp_path) -> None:
    worker, docs = await _run(tmp_path, sync=True, bulk=True, minutes=360)
    report = docs["report"][0]
    # 6 hours: about 1,440 snapshots a strategy, every 15 s (limits still checked every 5 s).
    assert worker.duties.journal_every_s == pytest.approx(15.0, rel=0.01)
    assert docs["runs"][0]["equity_journal_every_s"] == worker.duties.journal_every_s
    rows = {r["name"]: r for r in report["strategies"]}
    assert set(rows) == set(worker.books)
    for name, row in rows.items():
        assert 1_400 <= row["snapshots"] <= 1_445, (name, row["snapshots"])
        assert row["equity"] == pytest.approx(worker.result.equity[name])
    # Six hours: no per-day Sharpe (never annualised from snapshots); the PSR is there.
    assert all(r["sharpe_daily"] is None for r in rows.values())
    assert all(r["psr"] is not None for r in rows.values())
    assert report["verdict"]["period_s"] == pytest.approx(15.0, rel=0.01)


class DrillFeed:
    """A replay that engages the kill switch at one batch and releases it at a later one,
    pausing longer than the drive's kill-file poll after each (wall time)."""

    def __init__(self, feed: ReplayFeed, switch: Any, engage: int, release: int) -> None:
        self.feed, self.switch, self.engage, self.release = feed, switch, engage, release
        self.symbol, self.gaps = feed.symbol, feed.gaps
        self.capabilities = FeedCapabilities(as_fast_as_possible=True, batches=True)

    def batches(self) -> Any:
        for i, batch in enumerate(self.feed.batches()):
            if i == self.engage:
                self.switch.engage("tok", "drill", by="test")
                time.sleep(2 * KILL_POLL_SYNC_S)
            elif i == self.release:
                self.switch.release("tok")
                time.sleep(2 * KILL_POLL_SYNC_S)
            yield batch

    async def close(self) -> None:
        await self.feed.close()


async def test_the_kill_switch_stops_a_synchronous_backtest(tmp_path) -> None:
    from cryptoarena.trading.risk import KillSwitch
    from pydantic import SecretStr

    switch = KillSwitch(tmp_path / "arena.kill", SecretStr("tok"))
    config = all_strategies_config(bar_size="10s", fee_rate=0.0)
    config = config.model_copy(
        update={"strategies": tuple(s for s in config.strategies if s.kind == "buy_and_hold")}
    )
    trades = tape_slice(0, 20)
    clock = SimClock(int(trades["ts"].iloc[0]))
    feed = DrillFeed(ReplayFeed(trades), switch, engage=100, release=300)
    exchange = PaperExchange(clock=clock)
    with Journal.open(journal_settings(tmp_path), run_id=RUN, clock=clock, bulk=True) as journal:
        worker = Worker(config, feed=feed, exchange=exchange, journal=journal, clock=clock,
                        run_id=RUN, kill_switch=switch)  # fmt: skip
        assert worker.sync
        await worker.run()
        assert journal.sync(30)
        events = journal.find("risk_events", {"run_id": RUN}, sort=[("seq", 1)])
        kinds = [e["type"] for e in events if e["type"] in ("kill", "kill_released")]
        assert kinds == ["kill", "kill_released"]
        kill_ns, release_ns = (e["ts_ns"] for e in events if e["type"] in kinds)
        sides = [(o["side"], o["ts_ns"]) for o in journal.find("orders", sort=[("seq", 1)])]
        # Long before the kill, flattened by it, long again after the release.
        assert sides[0][0] == "Buy" and sides[0][1] < kill_ns
        assert any(s == "Sell" and kill_ns <= ts < release_ns for s, ts in sides)
        assert sides[-1][0] == "Buy" and sides[-1][1] >= release_ns


def test_a_folded_outcome_leaves_the_document_and_the_seqs_of_the_update(tmp_path) -> None:
    clock = SimClock(10**18)
    doc = {"symbol": "BTCUSDT", "bar_ts_ns": 10**18, "ts_ns": 10**18, "realised_price": None}
    with Journal.open(journal_settings(tmp_path), run_id=RUN, clock=clock, bulk=True) as journal:
        op = journal.prepare("predictions", doc)
        journal.fold_outcome(op, 9600.5, 10**18 + 15 * 10**9)  # uses up seq 2
        assert journal.last_seq == op["n"] + 1
        journal.write_prepared([op], through=journal.last_seq)
        assert journal.flush(5.0), "the used-up seq must count as written"
        after = journal.record("predictions", doc)
        assert journal.sync(5.0)
        got = journal.find("predictions", sort=[("seq", 1)])
    assert got[0]["realised_price"] == 9600.5 and got[0]["realised_ts_ns"] == 10**18 + 15 * 10**9
    assert got[1]["_id"] == after and got[1]["seq"] == op["n"] + 2


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_a_kill_switch_engaged_before_the_start_stops_the_first_decision(
    tmp_path, sync: bool
) -> None:
    """The switch was read only in the housekeeping after each tick's decisions, so a worker
    started while it was engaged sent its first order (buy-and-hold's entry) before it knew."""
    from cryptoarena.trading.risk import KillSwitch
    from pydantic import SecretStr

    switch = KillSwitch(tmp_path / "arena.kill", SecretStr("tok"))
    switch.engage("tok", "engaged before the worker started")
    config = all_strategies_config(bar_size="10s", fee_rate=0.0)
    config = config.model_copy(
        update={"strategies": tuple(s for s in config.strategies if s.kind == "buy_and_hold")}
    )
    trades = tape_slice(0, 2)
    clock = SimClock(int(trades["ts"].iloc[0]))
    with Journal.open(journal_settings(tmp_path), run_id=RUN, clock=clock, bulk=sync) as journal:
        worker = Worker(config, feed=ReplayFeed(trades), exchange=PaperExchange(clock=clock),
                        journal=journal, clock=clock, run_id=RUN, kill_switch=switch,
                        sync=sync)  # fmt: skip
        result = await worker.run()
        assert journal.sync(30)
        assert journal.find("orders", {"run_id": RUN}) == []
    assert result.orders == 0 and worker.risk.killed is not None
