"""Bars to decisions to orders: each strategy's guarded step, the decision journal (only when
a target or the kind of reason changes), crashes, and the hand-over to the order router.
A mixin of :class:`cryptoarena.trading.worker.Worker` (kept apart for size)."""

from __future__ import annotations

import re
from typing import Any

from cryptoarena.data.records import Bar
from cryptoarena.trading.arena_config import ArenaConfig
from cryptoarena.trading.duties import WorkerResult
from cryptoarena.trading.forecasts import ForecastPump
from cryptoarena.trading.risk.manager import RiskManager
from cryptoarena.trading.router import OrderRouter
from cryptoarena.trading.runner import Decision, StrategyCrash, StrategyRunner
from cryptoarena.trading.strategies.base import StrategyContext

_NUMBERS = re.compile(r"[-+]?\d[\d.,]*")


class WorkerDecisions:
    # Set by Worker.__init__ / Worker.run.
    config: ArenaConfig
    groups: dict[int, list[StrategyRunner]]
    pump: ForecastPump | None
    risk: RiskManager
    router: OrderRouter | None
    result: WorkerResult
    last_price: float | None
    last_trade_ns: int | None
    _last_journaled: dict[str, tuple[Any, str]]
    _last_decision: dict[str, str]

    def _record(self, kind: str, doc: dict[str, Any]) -> str:
        raise NotImplementedError

    def _must_flatten(self, name: str) -> bool:
        raise NotImplementedError

    async def _step_group(self, bar_ns: int, bar: Bar, now_ns: int, live: bool) -> None:
        fee = self.config.arena.fee_rate
        plain = StrategyContext(now_ns=now_ns, fee_rate=fee)
        ai_ctx: StrategyContext | None = None
        age: float | None = None
        for runner in self.groups.get(bar_ns, ()):
            if runner.crashed is not None:
                continue
            ctx = plain
            if runner.strategy.uses_forecast:
                if ai_ctx is None:
                    forecast, problem, age = (
                        self.pump.view(now_ns)
                        if self.pump is not None
                        else (None, "no forecast source", None)
                    )
                    ai_ctx = StrategyContext(now_ns, fee, forecast, problem)
                ctx = ai_ctx
            outcome = runner.step(bar, ctx)
            if not live:
                continue
            if isinstance(outcome, StrategyCrash):
                self._on_crash(outcome, now_ns)
                continue
            await self._on_decision(
                runner, outcome, now_ns, age if runner.strategy.uses_forecast else None
            )

    def _on_crash(self, crash: StrategyCrash, now_ns: int) -> None:
        self._record(
            "risk_events",
            {
                "type": "strategy_error",
                "strategy": crash.strategy,
                "reason": crash.error,
                "trace": crash.trace,
                "bar_ts_ns": crash.bar_ts_ns,
                "ts_ns": now_ns,
            },
        )
        self.risk.halt(crash.strategy, f"strategy raised {crash.error}", now_ns)

    async def _on_decision(
        self, runner: StrategyRunner, d: Decision, now_ns: int, age: float | None
    ) -> None:
        self.result.decisions += 1
        key = (d.target, _NUMBERS.sub("#", d.reason))
        decision_id = None
        if self._last_journaled.get(d.strategy) != key:
            self._last_journaled[d.strategy] = key
            decision_id = self._record(
                "decisions",
                {
                    "strategy": d.strategy,
                    "bar_ts_ns": d.bar_ts_ns,
                    "target": d.target,
                    "reason": d.reason,
                    "warming_up": d.warming_up,
                    "price": self.last_price,
                    "ts_ns": now_ns,
                },
            )
        self._last_decision[d.strategy] = d.reason
        if d.target is None or self._must_flatten(d.strategy) or self.last_price is None:
            return
        assert self.router is not None
        cid = await self.router.rebalance(
            d.strategy,
            d.target,
            price=self.last_price,
            now_ns=now_ns,
            last_trade_ns=self.last_trade_ns,
            uses_forecast=runner.strategy.uses_forecast,
            forecast_age_s=age,
            decision_id=decision_id,
        )
        if cid is not None:
            self.result.orders += 1
