"""RiskManager vetoes and halts (each with its reason), and the cross-process kill switch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptoarena.trading.risk import (
    GlobalLimits,
    KillSwitch,
    KillSwitchError,
    OrderIntent,
    RiskConfig,
    RiskManager,
    StrategyLimits,
)
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


def test_order_rate_limit_and_repeated_vetoes_are_emitted_once_a_minute() -> None:
    rm, events = manager(max_orders_per_minute=3)
    for i in range(3):
        assert check(rm, intent(), now=T0 + i * S) is None
        rm.order_sent("a", T0 + i * S)
    for i in range(10):
        assert "order rate" in (check(rm, intent(), now=T0 + (3 + i) * S) or "")
    assert rm.vetoes["a"] == 10 and len(events) == 1
    assert check(rm, intent(), now=T0 + 61 * S) is None  # the window moved on


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


def test_kill_switch_without_a_token_can_stop_but_not_release(tmp_path) -> None:
    ks = KillSwitch(tmp_path / "k", None)
    ks.engage(None, "panic")
    assert ks.status()["reason"] == "panic"  # type: ignore[index]
    with pytest.raises(KillSwitchError, match="no kill token configured"):
        ks.release(None)
    (tmp_path / "k").write_text("garbage{")
    assert ks.status()["engaged"] is True  # type: ignore[index]


def test_kill_blocks_new_risk_but_allows_flattening() -> None:
    rm, events = manager()
    rm.kill("operator", T0)
    assert check(rm, intent()) == "kill switch: operator"
    assert check(rm, OrderIntent("a", "Sell", 0.5, 9700.0, 0.5, 0.0)) is None
    assert [e["type"] for e in events][:1] == ["kill"]
