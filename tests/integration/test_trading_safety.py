"""Safety on real tape (issue #9): exits are never blocked, the kill token guards release,
orders wait for a durable journal record, predictions pending at a crash are resolved."""

from __future__ import annotations

import itertools
import sqlite3
import time
from contextlib import ExitStack
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from cryptoarena.clock import SimClock
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.exchange.instruments import BTCUSDT_LINEAR, ETHUSDT_LINEAR
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.risk import KillSwitch
from pydantic import SecretStr

from tests.integration.trading_kit import journal_settings, run_worker, tape_slice

pytestmark = pytest.mark.slow

S = 1_000_000_000


def _hold(capital: float) -> Any:
    return parse_arena_config(
        {
            "arena": {"fee_rate": 0.0, "capital": capital},
            "strategy": [{"name": "hold", "kind": "buy_and_hold"}],
        }
    )


async def test_kill_switch_flattens_a_long_worth_more_than_the_order_limit(tmp_path) -> None:
    """Capital 20,000, buy-and-hold long ~2.065 BTC after a rise: the flatten is worth more than
    the 20,000 order limit. It was vetoed every bar and the book never went flat; now it is an
    exit, sent reduce-only and split at the venue's maximum order size (0.5 BTC here)."""
    trades = tape_slice(1500, 4)  # 9,688 -> 9,706 in the first 150 s
    t0 = int(trades["ts"].iloc[0])
    switch = KillSwitch(tmp_path / "arena.kill", SecretStr("tok"))
    engaged: list[int] = []

    def kill_after_the_rise(i: int, batch: Any) -> None:
        if not engaged and batch[0].ts >= t0 + 150 * S:
            engaged.append(batch[0].ts)
            switch.engage("tok", "drill", by="test")

    clock = SimClock(t0)
    small = (replace(BTCUSDT_LINEAR, max_qty=Decimal("0.5")), ETHUSDT_LINEAR)
    exchange = PaperExchange(
        PaperExchangeConfig(initial_balance=Decimal(20_000), instruments=small), clock=clock
    )
    with Journal.open(journal_settings(tmp_path), run_id="k1") as journal:
        worker, _ = await run_worker(_hold(20_000.0), trades, journal, run_id="k1",
                                     exchange=exchange, kill_switch=switch,
                                     on_trades=kill_after_the_rise)  # fmt: skip
        journal.sync(30)
        orders = journal.find("orders", {"run_id": "k1"}, sort=[("seq", 1)])
        fills = journal.find("fills", {"run_id": "k1"}, sort=[("seq", 1)])
        vetoes = journal.find("risk_events", {"run_id": "k1", "type": "veto"})
        kills = journal.find("risk_events", {"run_id": "k1", "type": "kill"})
    assert engaged and len(kills) == 1
    buys = [o for o in orders if o["side"] == "Buy"]
    held = sum(Decimal(f["qty"]) for f in fills if f["side"] == "Buy")
    assert held >= Decimal("2.06") and not any(o["reduce_only"] for o in buys)
    # The position is worth more than the order limit at the kill.
    kill_price = float(trades[trades["ts"] >= engaged[0]]["price"].iloc[0])
    assert float(held) * kill_price > 20_000
    sells = [o for o in orders if o["side"] == "Sell"]
    assert len(sells) >= 5 and all(o["reduce_only"] for o in sells)
    assert all(Decimal(o["qty"]) <= Decimal("0.5") for o in sells)
    assert all(o["ts_ns"] >= kills[0]["ts_ns"] > buys[-1]["ts_ns"] for o in sells)
    assert worker.books["hold"].qty == 0
    assert not vetoes, vetoes[:3]


async def test_deleting_the_kill_file_does_not_release_a_worker_with_a_token(tmp_path) -> None:
    """Issue #9 item 2: the worker only checked that the kill file exists, so deleting it
    released trading. Now the release is ignored (journaled) until a signed one arrives."""
    path = tmp_path / "arena.kill"
    switch = KillSwitch(path, SecretStr("tok"))

    def drill(i: int) -> None:
        if i == 30:
            switch.engage("tok", "drill", by="ops")
        elif i == 60:
            path.unlink()

    with Journal.open(journal_settings(tmp_path), run_id="k2") as journal:
        worker, _ = await run_worker(_hold(10_000.0), tape_slice(0, 10), journal, run_id="k2",
                                     kill_switch=switch, on_batch=drill)  # fmt: skip
        journal.sync(30)
        events = journal.find("risk_events", {"run_id": "k2"}, sort=[("seq", 1)])
    kinds = [e["type"] for e in events if e["type"].startswith("kill")]
    assert kinds == ["kill", "kill_release_refused"]
    kill = next(e for e in events if e["type"] == "kill")
    assert kill["by"] == "ops" and kill["verified"] is True
    assert worker.risk.killed == "drill" and worker.books["hold"].qty == 0


async def test_a_flip_is_a_reduce_only_close_then_an_entry_checked_on_its_own(tmp_path) -> None:
    """Issue #9 item 1: a long->short flip was one order of about twice equity, vetoed by the
    order limit whenever the book was in profit. Now: a reduce-only close, then the entry."""
    config = parse_arena_config(
        {
            "arena": {"fee_rate": 0.0, "min_trade_fraction": 0.0},
            "risk": {"strategy": {"max_order_notional": 10_500.0}},
            "strategy": [{"name": "sma", "kind": "sma_cross",
                          "params": {"fast": 3, "slow": 8, "bar_size": "5s"}}],
        }
    )  # fmt: skip
    with Journal.open(journal_settings(tmp_path), run_id="f1") as journal:
        await run_worker(config, tape_slice(3600, 20), journal, run_id="f1")
        journal.sync(30)
        orders = journal.find("orders", {"run_id": "f1"}, sort=[("seq", 1)])
        vetoes = journal.find("risk_events", {"run_id": "f1", "type": "veto"})
    closes = []
    for o in orders:
        before, qty = Decimal(o["position_before"]), Decimal(o["qty"])
        against = before != 0 and (o["side"] == "Sell") == (before > 0)
        if against:
            closes.append(o)
            assert qty <= abs(before) and o["reduce_only"], o  # never crosses zero
        else:
            assert not o["reduce_only"] and qty * Decimal(str(o["ref_price"])) <= 10_500
    flips = [
        (a, b)
        for a, b in itertools.pairwise(orders)
        if a in closes and b["side"] == a["side"] and Decimal(b["position_before"]) == 0
    ]
    assert len(flips) >= 2, [(o["side"], o["position_before"], o["qty"]) for o in orders]
    assert not [v for v in vetoes if "notional" in v["reason"]]


async def test_an_order_waits_for_a_durable_record_and_is_vetoed_after_the_bound(
    tmp_path,
) -> None:
    """Issue #9 item 3: the flush before sending to a real venue was ignored, so an order
    could leave while its record existed only in memory. With the store locked, the order
    waits ``durable_wait_s`` and is vetoed (journaled, never sent); once the writer has put
    the records in its fsync'd spill, orders go again."""
    from tests.integration.journal_helpers import sqlite_locked

    settings = journal_settings(tmp_path)
    config = parse_arena_config(
        {
            "arena": {"fee_rate": 0.0, "durable_wait_s": 0.5},
            "strategy": [{"name": "hold", "kind": "buy_and_hold"}],
        }
    )
    trades = tape_slice(600, 2)
    clock = SimClock(int(trades["ts"].iloc[0]))
    exchange = PaperExchange(PaperExchangeConfig(initial_balance=Decimal(10_000)), clock=clock)
    with Journal.open(settings, run_id="d1") as journal, ExitStack() as locked:
        for _ in range(200):  # the writer may be mid-transaction: retry the lock
            try:
                locked.enter_context(sqlite_locked(settings, "orders"))
                break
            except sqlite3.OperationalError:
                time.sleep(0.01)
        else:
            raise AssertionError("could not lock the orders store")
        worker, _ = await run_worker(config, trades, journal, run_id="d1",
                                     exchange=exchange, durable_orders=True)  # fmt: skip
        locked.close()
        assert journal.sync(60)
        orders = journal.find("orders", {"run_id": "d1"}, sort=[("seq", 1)])
        vetoes = journal.find("risk_events", {"run_id": "d1", "type": "veto"})
        fills = journal.find("fills", {"run_id": "d1"})
    first = orders[0]["client_id"]
    assert [v["client_id"] for v in vetoes][:1] == [first]
    assert "journal not durable" in vetoes[0]["reason"]
    assert await exchange.get_order("BTCUSDT", first) is None  # never sent
    # Later orders, once their records were durable (spilled), went out and filled.
    assert fills and all(f["client_id"] != first for f in fills)
    assert worker.books["hold"].qty > 0


async def test_predictions_pending_at_a_stop_are_resolved_on_restart(tmp_path) -> None:
    """Issue #9 item 6: predictions pending when a worker died were never resolved. The
    restarted worker takes them over and resolves them from the bars it replays."""
    from tests.integration.trading_kit import TrailingMoveSource

    config = parse_arena_config(
        {
            "arena": {"fee_rate": 0.0},
            "strategy": [{"name": "ai", "kind": "ai_forecast", "params": {"margin_bps": 0}}],
        }
    )
    with Journal.open(journal_settings(tmp_path), run_id="p1") as journal:
        await run_worker(config, tape_slice(600, 3), journal, run_id="p1",
                         source=TrailingMoveSource())  # fmt: skip
        journal.sync(30)
        stopped = journal.find("runs", {"run_id": "p1", "event": "stopped"})
        left = journal.find("predictions", {"run_id": "p1", "realised_price": None})
        assert stopped[0]["unresolved_predictions"] == len(left) > 0
        # The restart replays the same tape, longer: the pending ones come due.
        await run_worker(config, tape_slice(600, 5), journal, run_id="p1",
                         source=TrailingMoveSource())  # fmt: skip
        journal.sync(30)
        runs = journal.find("runs", {"run_id": "p1", "event": "started"}, sort=[("seq", 1)])
        ids = {d["_id"] for d in left}
        again = [d for d in journal.find("predictions", {"run_id": "p1"}) if d["_id"] in ids]
    assert runs[-1]["restored"]["predictions_pending"] == len(left)
    assert len(again) == len(left) and all(d["realised_price"] is not None for d in again)
    for d in again:
        assert d["realised_ts_ns"] >= d["target_ts_ns"]


async def test_a_crash_mid_run_is_recorded_incomplete_with_its_cause(tmp_path) -> None:
    """Issue #10 item 4: a run that crashed was journaled as ``stopped_by: "feed ended"``."""

    def boom(i: int) -> None:
        if i == 40:
            raise RuntimeError("feed exploded")

    with Journal.open(journal_settings(tmp_path), run_id="c1") as journal:
        with pytest.raises(RuntimeError, match="feed exploded"):
            await run_worker(_hold(10_000.0), tape_slice(0, 5), journal, run_id="c1",
                             on_batch=boom)  # fmt: skip
        journal.sync(30)
        stopped = journal.find("runs", {"run_id": "c1", "event": "stopped"})
    assert len(stopped) == 1
    doc = stopped[0]
    assert doc["ended_by"] == "crash" and doc["complete"] is False
    assert doc["error"] == "RuntimeError: feed exploded"
    assert doc["stopped_by"] == "crashed: RuntimeError: feed exploded"


async def test_how_runs_end_feed_kill_and_halts_are_recorded(tmp_path) -> None:
    switch = KillSwitch(tmp_path / "arena.kill", SecretStr("tok"))

    def drill(i: int) -> None:
        if i == 30:
            switch.engage("tok", "drill", by="ops")

    settings = journal_settings(tmp_path)
    with Journal.open(settings, run_id="e1") as journal:
        _, whole = await run_worker(_hold(10_000.0), tape_slice(0, 2), journal, run_id="e1")
    with Journal.open(settings, run_id="e2") as journal:
        _, killed = await run_worker(_hold(10_000.0), tape_slice(0, 3), journal, run_id="e2",
                                     kill_switch=switch, on_batch=drill)  # fmt: skip
        journal.sync(30)
        ends = {r: journal.find("runs", {"run_id": r, "event": "stopped"})[0] for r in ("e1", "e2")}
    assert (whole.ended_by, whole.complete) == ("feed ended", True)
    assert (ends["e1"]["ended_by"], ends["e1"]["complete"]) == ("feed ended", True)
    assert (killed.ended_by, killed.complete) == ("kill switch", False)
    assert ends["e2"]["ended_by"] == "kill switch" and ends["e2"]["killed"] == "drill"
