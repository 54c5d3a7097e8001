"""The decision step: each strategy's guarded step on a closed bar, the decision journal (only
when a target or the kind of reason changes), crashes (halt that strategy alone), and the
hand-over of targets to the order router."""

from __future__ import annotations

import re
from typing import Any

from cryptoarena.data.records import Bar
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.engine.result import WorkerResult
from cryptoarena.trading.engine.runner import Decision, StrategyCrash, StrategyRunner
from cryptoarena.trading.engine.state import Recorder, RunState, must_flatten
from cryptoarena.trading.forecasts.pump import ForecastPump
from cryptoarena.trading.risk.manager import RiskManager
from cryptoarena.trading.strategies.base import StrategyContext

_NUMBERS = re.compile(r"[-+]?\d[\d.,]*")


class Decider:
    def __init__(
        self,
        config: ArenaConfig,
        *,
        groups: dict[int, list[StrategyRunner]],
        risk: RiskManager,
        pump: ForecastPump | None,
        record: Recorder,
        state: RunState,
        result: WorkerResult,
    ) -> None:
        self.fee = config.arena.fee_rate
        self.maker_fee = config.arena.maker_fee_rate
        self.flatten_on_kill = config.arena.flatten_on_kill
        self.groups = groups
        self.risk = risk
        self.pump = pump
        self.record = record
        self.state = state
        self.result = result
        self._last_journaled: dict[str, tuple[Any, str]] = {}

    async def step(self, bar_ns: int, bar: Bar, now_ns: int, live: bool) -> None:
        """Every strategy on ``bar_ns`` bars sees ``bar``; live ticks decide and route."""
        plain = StrategyContext(now_ns=now_ns, fee_rate=self.fee, maker_fee_rate=self.maker_fee)
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
                    ai_ctx = StrategyContext(
                        now_ns,
                        self.fee,
                        forecast,
                        problem,
                        maker_fee_rate=self.maker_fee,
                    )
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

    async def decided(
        self, runner: StrategyRunner, outcome: Decision | StrategyCrash, now_ns: int
    ) -> None:
        """A live decision computed ahead of time (a bar backtest computes each strategy's
        decisions over its whole span first): journaled, routed, or a crash, as in :meth:`step`."""
        if isinstance(outcome, StrategyCrash):
            self._on_crash(outcome, now_ns)
            return
        await self._on_decision(runner, outcome, now_ns, None)

    def _on_crash(self, crash: StrategyCrash, now_ns: int) -> None:
        self.record(
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
        state = self.state
        # A book that must flatten (halted, or every book under a kill that flattens) routes
        # no decision: its decisions are not journaled either (a halted book kept deciding
        # every few bars, ~97 % of a long run's decision documents, read by no report). The
        # first one that differs after a release is journaled, as after any other.
        halted = must_flatten(self.risk, d.strategy, flatten_on_kill=self.flatten_on_kill)
        key = (d.target, _NUMBERS.sub("#", d.reason))
        decision_id = None
        if not halted and self._last_journaled.get(d.strategy) != key:
            self._last_journaled[d.strategy] = key
            decision_id = self.record(
                "decisions",
                {
                    "strategy": d.strategy,
                    "bar_ts_ns": d.bar_ts_ns,
                    "target": d.target,
                    "reason": d.reason,
                    "warming_up": d.warming_up,
                    "price": state.last_price,
                    "ts_ns": now_ns,
                },
            )
        state.last_decision[d.strategy] = d.reason
        if d.target is None and runner.strategy.uses_forecast:
            # Standing aside (stale or missing forecast): a maker quote must not outlive it.
            await state.need_router().withdraw(d.strategy, "forecast gone: standing aside")
        if d.target is None or halted or state.last_price is None:
            return
        cid = await state.need_router().rebalance(
            d.strategy,
            d.target,
            price=state.last_price,
            now_ns=now_ns,
            last_trade_ns=state.last_trade_ns,
            uses_forecast=runner.strategy.uses_forecast,
            forecast_age_s=age,
            decision_id=decision_id,
        )
        if cid is not None:
            self.result.orders += 1
