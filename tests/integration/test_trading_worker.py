"""The worker on real tape: all strategies, the paper exchange and the real journal (litemongo)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from cryptoarena.trading.config import all_strategies_config, parse_arena_config
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.strategies import STRATEGY_TYPES
from cryptoarena.trading.strategies.reference import BuyAndHold

from tests.integration.trading_kit import (
    TrailingMoveSource,
    journal_settings,
    run_worker,
    tape_slice,
)


@pytest.mark.slow
async def test_all_strategies_trade_the_real_tape_into_the_journal(tmp_path) -> None:
    config = all_strategies_config(min_trade_fraction=0.05, fee_rate=0.0001)
    trades = tape_slice(3600, 45)
    with Journal.open(journal_settings(tmp_path), run_id="w1") as journal:
        worker, result = await run_worker(
            config, trades, journal, run_id="w1", source=TrailingMoveSource()
        )
        journal.sync(30)
        names = [s.name for s in config.strategies]
        decisions = Counter(d["strategy"] for d in journal.find("decisions", {"run_id": "w1"}))
        assert set(decisions) == set(names), f"no decisions from {set(names) - set(decisions)}"
        orders = journal.find("orders", {"run_id": "w1"})
        fills = journal.find("fills", {"run_id": "w1"})
        assert orders and fills
        ids = [o["client_id"] for o in orders]
        assert len(ids) == len(set(ids)), "a client id was sent twice"
        assert {f["client_id"] for f in fills} <= set(ids)
        assert result.orders == len(orders)
        # Each book: the identity, and the journal's fills rebuild it exactly.
        mark = Decimal(str(worker.state.last_price))
        for name, book in worker.books.items():
            assert book.equity(mark) == book.cash + book.qty * mark - book.fees
            assert book.fills == sum(1 for f in fills if f["strategy"] == name)
        # The books net to the paper venue's position.
        net = sum(b.qty for b in worker.books.values())
        assert (await worker.exchange.position("BTCUSDT")).qty == net
        # Predictions: every one whose horizon ended inside the data has its realised price.
        preds = journal.find("predictions", {"run_id": "w1"})
        assert len(preds) > 2000
        last_ts = int(trades["ts"].iloc[-1])
        due = [p for p in preds if p["target_ts_ns"] <= last_ts - 1_000_000_000]
        assert due and all(p["realised_price"] is not None for p in due)
        assert len(preds) - sum(p["realised_price"] is not None for p in preds) <= 16
        # Read models and equity snapshots.
        summaries = journal.summaries()
        assert set(names) <= set(summaries)
        assert (
            summaries["ai_maker"]["family"] == "ai"
            and summaries["sma_cross"]["family"] == "classical"
        )
        # A backtest journals equity every backtest_equity_every_s (limits checked every 5 s).
        every = int(config.arena.backtest_equity_every_s)
        assert journal.count("equity", {"run_id": "w1"}) >= len(names) * (45 * 60 // every - 2)
        runs = journal.find("runs", {"run_id": "w1"})
        assert [r["event"] for r in runs] == ["started", "stopped"]


class Exploding(BuyAndHold):
    kind = "exploding"

    def on_bar(self, bar, ctx):  # type: ignore[no-untyped-def]
        self.n = getattr(self, "n", 0) + 1
        if self.n == 120:
            raise ZeroDivisionError("boom")
        return super().on_bar(bar, ctx)


async def test_a_strategy_that_raises_is_halted_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(STRATEGY_TYPES, "exploding", Exploding)
    config = parse_arena_config(
        {
            "strategy": [
                {"name": "bad", "kind": "exploding"},
                {"name": "hold", "kind": "buy_and_hold"},
                {
                    "name": "sma",
                    "kind": "sma_cross",
                    "params": {"fast": 3, "slow": 8, "bar_size": "1m"},
                },
            ]
        }
    )
    with Journal.open(journal_settings(tmp_path), run_id="w2") as journal:
        worker, _result = await run_worker(config, tape_slice(0, 20), journal, run_id="w2")
        journal.sync(30)
        events = journal.find("risk_events", {"run_id": "w2"})
        errors = [e for e in events if e["type"] == "strategy_error"]
        assert [e["strategy"] for e in errors] == ["bad"]
        assert (
            "ZeroDivisionError: boom" in errors[0]["reason"] and "Traceback" in errors[0]["trace"]
        )
        assert any(e["type"] == "halt" and e["strategy"] == "bad" for e in events)
        # The others kept deciding after the crash; the crashed one was flattened and stopped.
        crash_ts = errors[0]["ts_ns"]
        later = [d for d in journal.find("decisions", {"run_id": "w2"}) if d["ts_ns"] > crash_ts]
        assert {d["strategy"] for d in later} >= {"sma"}
        assert all(d["strategy"] != "bad" for d in later)
        assert worker.books["bad"].qty == 0 and worker.books["hold"].qty > 0
        assert worker.risk.halted.keys() == {"bad"}


async def test_stale_forecast_makes_the_ai_stand_aside(tmp_path) -> None:
    config = parse_arena_config(
        {
            "arena": {"fee_rate": 0.0},
            "strategy": [{"name": "ai", "kind": "ai_forecast", "params": {"margin_bps": 0}}],
        }
    )
    source = TrailingMoveSource(fail_after=300)
    with Journal.open(journal_settings(tmp_path), run_id="w3") as journal:
        worker, _ = await run_worker(
            config, tape_slice(600, 10), journal, run_id="w3", source=source
        )
        journal.sync(30)
        decisions = journal.find(
            "decisions", {"run_id": "w3", "strategy": "ai"}, sort=[("ts_ns", 1)]
        )
        stale = [d for d in decisions if "stand aside: forecast stale" in d["reason"]]
        assert stale, [d["reason"] for d in decisions][-5:]
        assert "timeout" in stale[0]["reason"]
        # No AI order after it went blind; before it, it did trade on forecasts.
        orders = journal.find("orders", {"run_id": "w3", "strategy": "ai"})
        assert orders and all(o["ts_ns"] < stale[0]["ts_ns"] for o in orders)
        assert worker.pump is not None and worker.pump.failures > 0


async def test_kill_switch_flattens_everyone_and_release_lets_them_trade_again(tmp_path) -> None:
    from cryptoarena.trading.risk import KillSwitch
    from pydantic import SecretStr

    switch = KillSwitch(tmp_path / "arena.kill", SecretStr("tok"))

    def drill(i: int) -> None:
        if i == 30:
            switch.engage("tok", "drill", by="test")
        elif i == 60:
            switch.release("tok")

    config = parse_arena_config(
        {"arena": {"fee_rate": 0.0}, "strategy": [{"name": "hold", "kind": "buy_and_hold"}]}
    )
    with Journal.open(journal_settings(tmp_path), run_id="w4") as journal:
        worker, _ = await run_worker(config, tape_slice(0, 20), journal, run_id="w4",
                                     kill_switch=switch, on_batch=drill)  # fmt: skip
        journal.sync(30)
        events = journal.find("risk_events", {"run_id": "w4"}, sort=[("seq", 1)])
        kinds = [e["type"] for e in events if e["type"] in ("kill", "kill_released")]
        assert kinds == ["kill", "kill_released"]
        kill_ns, release_ns = (e["ts_ns"] for e in events if e["type"] in ("kill", "kill_released"))
        orders = journal.find("orders", {"run_id": "w4"}, sort=[("seq", 1)])
        sides = [(o["side"], o["ts_ns"]) for o in orders]
        # Long before the kill, flattened by it, long again after the release.
        assert sides[0][0] == "Buy" and sides[0][1] < kill_ns
        assert any(s == "Sell" and kill_ns <= ts < release_ns for s, ts in sides)
        assert sides[-1][0] == "Buy" and sides[-1][1] >= release_ns
        assert worker.books["hold"].qty > 0
