"""RiskManager vetoes and halts (each with its reason), and the cross-process kill switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptoarena.trading.risk import (
    GlobalLimits,
    KillGuard,
    KillSwitch,
    KillSwitchError,
    OrderIntent,
    RiskConfig,
    RiskManager,
    StrategyLimits,
)
from cryptoarena.trading.risk.state import RiskState
from pydantic import SecretStr, ValidationError

S = 1_000_000_000
T0 = 1_582_329_602 * S


def manager(**limits: float) -> tuple[RiskManager, list[dict]]:
    events: list[dict] = []
    strat = {k: v for k, v in limits.items() if k in StrategyLimits.model_fields}
    glob = {k: v for k, v in limits.items() if k in GlobalLimits.model_fields}
    config = RiskConfig(strategy=StrategyLimits(**strat), **{"global": GlobalLimits(**glob)})
    return RiskManager(config, {"a": 10_000.0, "b": 10_000.0}, events.append), events


def intent(qty: float = 0.5, price: float = 9700.0, before: float = 0.0, **kw) -> OrderIntent:
    return OrderIntent("a", "Buy", qty, price, before, before + qty, **kw)


def check(rm: RiskManager, it: OrderIntent, now: int = T0, last: float = 9700.0) -> str | None:
    return rm.check(
        it,
        now_ns=now,
        last_trade_price=last,
        last_trade_ns=now - S,
        gross_notional_after=it.notional,
    )


@pytest.mark.parametrize(
    ("limits", "order", "words"),
    [
        ({"max_order_notional": 1000}, intent(), "order notional 4,850 > 1,000"),
        ({"max_position_notional": 5000}, intent(before=0.2), "position notional"),
        ({"price_band_bps": 10}, intent(price=9750.0), "bps from the reference"),
        (
            {"max_forecast_age_s": 2},
            intent(uses_forecast=True, forecast_age_s=3.5),
            "stale forecast",
        ),
        ({}, intent(uses_forecast=True, forecast_age_s=None), "no forecast"),
    ],
)
def test_vetoes_say_why_and_are_emitted(limits, order, words) -> None:
    rm, events = manager(**limits)
    reason = check(rm, order)
    assert reason is not None and words in reason
    assert events[-1]["type"] == "veto" and events[-1]["reason"] == reason
    assert rm.vetoes["a"] == 1


def test_stale_market_data_is_vetoed() -> None:
    rm, _ = manager(max_data_age_s=5)
    it = intent()
    reason = rm.check(
        it, now_ns=T0, last_trade_price=9700.0, last_trade_ns=T0 - 9 * S, gross_notional_after=0
    )
    assert reason is not None and "stale market data" in reason


def test_order_rate_limit_and_repeated_vetoes_are_emitted_once() -> None:
    rm, events = manager(max_orders_per_minute=3)
    for i in range(3):
        assert check(rm, intent(), now=T0 + i * S) is None
        rm.order_sent("a", T0 + i * S)
    for i in range(10):
        assert "order rate" in (check(rm, intent(), now=T0 + (3 + i) * S) or "")
    assert rm.vetoes["a"] == 10 and len(events) == 1
    assert check(rm, intent(), now=T0 + 61 * S) is None  # the window moved on


def test_a_veto_without_a_colon_is_journaled_once_per_state_change() -> None:
    """Issue #9 item 16: "order notional 4,850 > 1,000" has no colon, and its numbers change
    every bar; it was journaled on every bar. One event per distinct veto state now."""
    rm, events = manager(max_order_notional=1000)
    for i in range(180):  # three minutes of bars, the price moving
        reason = check(rm, intent(price=9700.0 + i), now=T0 + i * S, last=9700.0 + i)
        assert reason is not None and reason.startswith("order notional")
    assert rm.vetoes["a"] == 180 and [e["type"] for e in events] == ["veto"]
    # Another state (position notional) is a change; an order that passes ends the state.
    check(rm, intent(qty=0.1, before=2.0), now=T0 + 200 * S)
    assert len(events) == 2 and "position notional" in events[-1]["reason"]
    assert check(rm, intent(qty=0.1), now=T0 + 201 * S) is None
    check(rm, intent(), now=T0 + 202 * S)
    assert len(events) == 3 and events[-1]["reason"].startswith("order notional")


def test_drawdown_and_daily_loss_halt_but_still_allow_reducing() -> None:
    rm, events = manager(max_drawdown=0.05, max_daily_loss=0.5)
    rm.on_equity("a", 10_500.0, T0)
    rm.on_equity("a", 9_900.0, T0 + S)  # 5.7 % below the peak
    assert "drawdown" in rm.halted["a"] and events[-1]["type"] == "halt"
    assert "strategy halted" in (check(rm, intent()) or "")
    closing = OrderIntent("a", "Sell", 0.5, 9700.0, 0.5, 0.0)
    assert check(rm, closing) is None
    assert "b" not in rm.halted
    rm2, _ = manager(max_daily_loss=0.02)
    rm2.on_equity("b", 10_000.0, T0)
    rm2.on_equity("b", 9_700.0, T0 + S)
    assert rm2.halted["b"] == "daily loss 3.000% > 2.00%"


def test_global_drawdown_halts_everyone() -> None:
    rm, events = manager(max_drawdown=0.01)
    rm.on_total_equity(20_000.0, T0)
    rm.on_total_equity(19_700.0, T0 + S)
    assert rm.global_halt is not None and "drawdown 1.500% > 1.00%" in rm.global_halt
    assert events[-1]["type"] == "global_halt"
    assert "global halt" in (check(rm, intent()) or "")


def test_limits_are_validated() -> None:
    with pytest.raises(ValidationError):
        StrategyLimits(max_daily_loss=1.5)
    with pytest.raises(ValidationError):
        RiskConfig.model_validate({"strategy": {"max_orders_per_minut": 3}})


def test_kill_switch_needs_the_token_and_works_across_processes(tmp_path) -> None:
    path = tmp_path / "arena.kill"
    ks = KillSwitch(path, SecretStr("t0ken"))
    with pytest.raises(KillSwitchError):
        ks.engage("wrong", "test")
    assert ks.status() is None and not path.exists()
    # Another process engages it; this one sees it.
    code = (
        "from cryptoarena.trading.risk import KillSwitch; from pydantic import SecretStr; import sys;"
        "KillSwitch(sys.argv[1], SecretStr('t0ken')).engage('t0ken', 'operator says stop', by='other')"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=os.environ.copy())
    status = ks.status()
    assert (
        status is not None and status["reason"] == "operator says stop" and status["by"] == "other"
    )
    with pytest.raises(KillSwitchError):
        ks.release("nope")
    ks.release("t0ken")
    assert ks.status() is None


def test_kill_switch_without_a_token_can_stop_and_release_locally(tmp_path) -> None:
    ks = KillSwitch(tmp_path / "k", None)
    guard = KillGuard(ks)
    ks.engage(None, "panic")
    assert ks.status()["reason"] == "panic"  # type: ignore[index]
    event = guard.poll(killed=False)
    assert event is not None and (event.type, event.verified) == ("kill", None)
    ks.release(None)  # no token anywhere: the CLI on this machine releases
    assert ks.status() is None
    event = guard.poll(killed=True)
    assert event is not None and event.type == "kill_released"
    (tmp_path / "k").write_text("garbage{")
    assert ks.status()["engaged"] is True  # type: ignore[index]


def test_the_worker_verifies_release_against_its_own_token(tmp_path) -> None:
    """Issue #9 item 2: a caller who sets the token it presents itself, or deletes the kill
    file, released the kill switch. The worker (the enforcing side) checks its own token."""
    path = tmp_path / "arena.kill"
    worker_side = KillSwitch(path, SecretStr("s3cret"))
    guard = KillGuard(worker_side)
    worker_side.engage("s3cret", "operator", by="ops")
    event = guard.poll(killed=False)
    assert event is not None and (event.type, event.by, event.verified) == ("kill", "ops", True)
    # Deleting the file does not release; the attempt is reported once.
    path.unlink()
    event = guard.poll(killed=True)
    assert event is not None and event.type == "kill_release_refused"
    assert "removed" in event.reason
    assert guard.poll(killed=True) is None
    # An attacker's CLI with ARENA_TRADING__KILL_TOKEN=X set by itself signs with X: refused.
    KillSwitch(path, SecretStr("X")).release("X", by="mallory")
    event = guard.poll(killed=True)
    assert event is not None and (event.type, event.by) == ("kill_release_refused", "mallory")
    # So is an unsigned release.
    KillSwitch(path, None).release(None, by="nobody")
    event = guard.poll(killed=True)
    assert event is not None and event.type == "kill_release_refused"
    # The real token releases; an old signed release copied back later does not.
    worker_side.release("s3cret", by="ops")
    old_release = path.read_text()
    event = guard.poll(killed=True)
    assert event is not None and (event.type, event.verified) == ("kill_released", True)
    worker_side.engage("s3cret", "again", by="ops")
    assert guard.poll(killed=False) is not None
    path.write_text(old_release)
    event = guard.poll(killed=True)
    assert event is not None and event.type == "kill_release_refused" and "older" in event.reason
    # An engage whose signature does not verify still stops trading (fail safe), marked so.
    path.unlink()
    KillSwitch(path, None).engage(None, "anyone", by="someone")
    event = KillGuard(worker_side).poll(killed=False)
    assert event is not None and (event.type, event.verified) == ("kill", False)


def test_kill_blocks_new_risk_but_allows_flattening() -> None:
    rm, events = manager()
    rm.kill("operator", T0)
    assert check(rm, intent()) == "kill switch: operator"
    assert check(rm, OrderIntent("a", "Sell", 0.5, 9700.0, 0.5, 0.0)) is None
    assert [e["type"] for e in events][:1] == ["kill"]


def test_exits_pass_the_limits_that_guard_new_risk() -> None:
    """Issue #9 item 1: a long of 2.065 BTC after a rise is worth more than the order limit;
    its flatten was vetoed ("order notional 20,046 > 20,000") and the book never went flat.
    Exits pass the notional, order-rate, stale-data and price-band limits."""
    rm, _ = manager(max_order_notional=20_000, max_orders_per_minute=1, max_data_age_s=5,
                         price_band_bps=10)  # fmt: skip
    rm.kill("operator", T0)
    rm.order_sent("a", T0)  # the rate limit is used up
    flatten = OrderIntent("a", "Sell", 2.065, 9708.0, 2.065, 0.0)
    assert flatten.notional > 20_000
    # Stale data (60 s old) and a price 100 bps from the reference: still allowed.
    assert (
        rm.check(flatten, now_ns=T0 + S, last_trade_price=9611.0, last_trade_ns=T0 - 60 * S,
                 gross_notional_after=0.0) is None
    )  # fmt: skip
    partial = OrderIntent("a", "Sell", 1.0, 9708.0, 2.065, 1.065)  # a partial exit too
    assert check(rm, partial, now=T0 + 2 * S, last=9708.0) is None
    # New risk is still checked: the same size the other way is vetoed.
    assert "kill switch" in (check(rm, OrderIntent("a", "Sell", 2.065, 9708.0, 0.0, -2.065)) or "")


async def test_the_forecast_backoff_is_capped_and_never_overflows() -> None:
    """Issue #10 item 4: ``2.0 ** (consecutive - 3)`` raised OverflowError after ~1,000
    consecutive failures (a full-day backtest without a model server crashed)."""
    from cryptoarena.data.records import Bar
    from cryptoarena.serving.client import SERVED
    from cryptoarena.trading.forecasts.pump import ForecastPump, backoff_s

    class Down:
        capabilities = SERVED

        async def aclose(self) -> None:
            return None

        async def forecast(self, symbol: str, bars: object) -> object:
            raise RuntimeError("connection refused")

        async def health(self) -> bool:
            return False

    pump = ForecastPump(Down(), "BTCUSDT", window=16, max_age_s=2.5, record=lambda k, d: "x")
    pump._consecutive = 5_000
    pump.on_bar(Bar(T0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, 0.5, 0.5), T0 + S)
    await pump.settle()
    assert pump.failures == 1 and pump._retry_at_ns == T0 + S + 30 * S
    assert [backoff_s(n) for n in (3, 4, 5, 10**6)] == [1.0, 2.0, 4.0, 30.0]


def test_pending_predictions_are_resolved_from_recorded_bars() -> None:
    """A live restart does not replay the past: predictions that came due while the worker was
    down are resolved from the collector's recorded 1-second bars, as live bars would."""
    import pandas as pd
    from cryptoarena.serving.client import SERVED
    from cryptoarena.trading.forecasts.pump import ForecastPump, PendingPrediction

    class Idle:
        capabilities = SERVED

        async def aclose(self) -> None:
            return None

        async def forecast(self, symbol: str, bars: object) -> object:
            raise RuntimeError("unused")

        async def health(self) -> bool:
            return True

    pump = ForecastPump(Idle(), "BTCUSDT", window=16, max_age_s=2.5, record=lambda k, d: "x")
    pump.restore_pending([PendingPrediction("b", T0 + 5 * S), PendingPrediction("a", T0 + 3 * S),
                          PendingPrediction("late", T0 + 60 * S),
                          PendingPrediction("gap", T0 - 30 * S)])  # fmt: skip
    bars = pd.DataFrame(
        {"ts": [T0 + i * S for i in range(10)], "close": [100.0 + i for i in range(10)]}
    )
    got: list[tuple[str, float, int]] = []
    assert pump.resolve_recorded(bars, lambda *a: got.append(a)) == 2
    # The bar that closes at the target (open ts = target - 1 s) gives the realised price.
    assert got == [("a", 102.0, T0 + 3 * S), ("b", 104.0, T0 + 5 * S)]
    assert [p.event_id for p in pump.pending] == ["late"]
    # Due before the first recorded bar (a gap): no outcome rather than a later bar's price.
    assert pump.unresolvable == 1


def test_halts_are_recorded_with_reason_and_time() -> None:
    rm, _ = manager(max_daily_loss=0.02)
    rm.on_equity("b", 10_000.0, T0)
    rm.on_equity("b", 9_700.0, T0 + 7 * S)
    state = rm.state()
    assert state["halted"] == {"b": "daily loss 3.000% > 2.00%"}
    assert state["halted_at"] == {"b": T0 + 7 * S}


def test_a_daily_loss_halt_ends_with_its_utc_day_a_drawdown_halt_does_not() -> None:
    day_ns = 86_400 * S
    next_day = (T0 // day_ns + 1) * day_ns
    rm, events = manager(max_daily_loss=0.02, max_drawdown=0.5)
    rm.on_equity("a", 10_000.0, T0)
    rm.on_equity("a", 9_700.0, T0 + S)
    assert rm.halted["a"] == "daily loss 3.000% > 2.00%"
    assert rm.next_daily_release_ns() == next_day
    rm.on_equity("a", 9_700.0, next_day - S)  # the same UTC day: still halted
    assert "strategy halted" in (check(rm, intent(), now=next_day - S) or "")
    rm.on_equity("a", 9_700.0, next_day + S)  # the next day's first mark
    assert "a" not in rm.halted and rm.next_daily_release_ns() is None
    assert events[-1]["type"] == "halt_released" and events[-1]["strategy"] == "a"
    assert "daily loss 3.000%" in events[-1]["reason"]
    assert check(rm, intent(), now=next_day + 2 * S) is None  # new risk again
    # A drawdown is not a daily limit: its halt stays until a human acts.
    rm2, _ = manager(max_daily_loss=0.5, max_drawdown=0.02)
    rm2.on_equity("b", 10_000.0, T0)
    rm2.on_equity("b", 9_700.0, T0 + S)
    rm2.on_equity("b", 9_700.0, next_day + S)
    assert "drawdown" in rm2.halted["b"]
    # The global daily limit the same way.
    rm3, events3 = manager(max_daily_loss=0.02)
    rm3.on_total_equity(20_000.0, T0)
    rm3.on_total_equity(19_000.0, T0 + S)
    assert rm3.global_halt is not None and "daily loss" in rm3.global_halt
    rm3.on_total_equity(19_000.0, next_day + S)
    assert rm3.global_halt is None and events3[-1]["type"] == "halt_released"
    assert events3[-1]["strategy"] is None


def _journaled_manager(**limits: float) -> tuple[RiskManager, list[dict], list[dict]]:
    """A manager that journals its ``risk_state`` documents (into the list returned)."""
    events: list[dict] = []
    docs: list[dict] = []
    config = manager(**limits)[0].config
    capitals = {"a": 10_000.0, "b": 10_000.0}
    return RiskManager(config, capitals, events.append, journal_state=docs.append), events, docs


def test_a_restored_risk_state_decides_as_the_manager_that_was_never_stopped() -> None:
    day_ns = 86_400 * S
    next_day = (T0 // day_ns + 1) * day_ns
    limits = {"max_daily_loss": 0.02, "max_drawdown": 0.03}
    rm, events, docs = _journaled_manager(**limits)
    rm.on_equity("a", 10_000.0, T0)
    rm.on_equity("b", 10_000.0, T0)  # b's day starts at 10,000
    rm.on_equity("a", 9_700.0, T0 + S)  # a: halted for the day
    rm.on_equity("b", 10_400.0, T0 + S)  # b: a new peak
    rm.on_total_equity(20_100.0, T0 + S)
    rm.journal_state(T0 + S)
    assert rm.halted == {"a": "daily loss 3.000% > 2.00%"}
    # The newest document (through JSON, as a journal keeps it) restores a fresh manager.
    doc = json.loads(json.dumps(docs[-1]))
    again, again_events, _ = _journaled_manager(**limits)
    again.restore(RiskState.from_doc(doc), [], T0 + S)
    assert again.state() == rm.state() and again.marks == rm.marks
    assert again.daily_halt_day == rm.daily_halt_day
    # The same marks from here on: the same vetoes, halts and releases at the same times.
    seen = len(events)
    for who in (rm, again):
        assert "strategy halted" in (check(who, intent(), now=T0 + 2 * S) or "")
        # 3.4 % below the pre-restart peak (a fresh manager's peak would be the capital), a
        # gain on the day: a drawdown halt.
        who.on_equity("b", 10_050.0, T0 + 3 * S)
        who.on_equity("a", 9_700.0, next_day + S)  # a new UTC day ends a's daily halt
        assert check(who, intent(), now=next_day + 2 * S) is None
    assert again_events == events[seen:]
    assert [e["type"] for e in again_events] == ["veto", "halt", "halt_released"]
    assert "drawdown" in again.halted["b"] and "a" not in again.halted


def test_a_restored_kill_and_order_rate_hold_after_a_restart() -> None:
    rm, _, docs = _journaled_manager(max_orders_per_minute=2)
    rm.kill("operator", T0, by="test")
    assert docs and docs[-1]["killed"] == "operator"
    again, _, _ = _journaled_manager(max_orders_per_minute=2)
    again.restore(RiskState.from_doc(docs[-1]), [("a", T0 - 70 * S), ("a", T0 - 30 * S),
                                                 ("a", T0 - 10 * S)], T0)  # fmt: skip
    assert "kill switch: operator" in (check(again, intent(), now=T0) or "")
    again.unkill(T0 + S, by="test")
    # Two orders of the last minute count; the one 70 s ago does not.
    assert "order rate: 2 orders" in (check(again, intent(), now=T0 + S) or "")
    assert check(again, intent(), now=T0 + 31 * S) is None
