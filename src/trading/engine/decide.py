"""The decision step: each strategy's guarded step on a closed bar, the decision journal (only
when a target or the kind of reason changes), crashes (halt that strategy alone), and the
hand-over of targets to the order router."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from cryptoarena.data.records import Bar
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.engine.result import WorkerResult
from cryptoarena.trading.engine.runner import Decision, StrategyCrash, StrategyRunner
from cryptoarena.trading.engine.state import Recorder, RunState, must_flatten
from cryptoarena.trading.forecasts.pump import ForecastPump
from cryptoarena.trading.risk.manager import RiskManager
from cryptoarena.trading.strategies.base import StrategyContext

_NUMBERS = re.compile(r"[-+]?\d[\d.,]*")
# Digits turned into one mark: two reasons with the same shape (every character the same but
# digits) mask to the same class, so the mask's regex runs once per shape, not per bar.
_DIGITS = str.maketrans("0123456789", "##########")
_SHAPES_KEPT = 4096
# The float pre-check's margin: far above float error on equity and sizes, far below any
# difference the sizing rule's thresholds could turn on.
SIZE_MARGIN = 1e-9
# Equity within this of zero: the float cannot tell its sign, the pre-check asks the router.
NEAR_ZERO_EQUITY = 1e-6


def may_size_order(
    cash_less_fees: float,
    qty: float,
    target: float,
    price: float,
    min_fraction: float,
    min_qty: float,
) -> bool:
    """Might ``orders.size_order`` give an order for this book (its cash less fees and size as
    floats) at ``price``? Its own rule in floats with a margin: False only when it certainly
    gives none (the exact check stays the router's, in ``Decimal``)."""
    equity = cash_less_fees + qty * price
    if equity <= NEAR_ZERO_EQUITY:
        return equity > -NEAR_ZERO_EQUITY  # near zero the float cannot tell the sign: ask
    if target == 0.0:
        return qty != 0.0
    delta = abs(target * equity / price - qty)
    return delta * price >= min_fraction * equity * (1 - SIZE_MARGIN) and delta >= min_qty * (
        1 - SIZE_MARGIN
    )


def may_size_orders(
    cash_less_fees: float,
    qty: float,
    target: np.ndarray,
    price: np.ndarray,
    min_fraction: float,
    min_qty: float,
) -> np.ndarray:
    """:func:`may_size_order` at every (``target``, ``price``) pair at once, for a book whose
    cash and size stay fixed over them (a bar backtest's quiet span): the same float operations,
    element by element, so both give the same answer (tests/unit/test_may_size_order.py)."""
    equity = cash_less_fees + qty * price
    with np.errstate(all="ignore"):
        delta = np.abs(target * equity / price - qty)
        sized = (delta * price >= min_fraction * equity * (1 - SIZE_MARGIN)) & (
            delta >= min_qty * (1 - SIZE_MARGIN)
        )
    return np.where(
        equity <= NEAR_ZERO_EQUITY,
        equity > -NEAR_ZERO_EQUITY,
        np.where(target == 0.0, qty != 0.0, sized),
    )


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
        self._masked: dict[str, str] = {}  # a reason's shape → its masked form
        # Each book's cash less fees and size as floats, read again after a fill (by count).
        self._floats: dict[str, tuple[int, float, float]] = {}
        self._limits: tuple[float, float] | None = None  # (min trade fraction, min qty)
        self.skipped = 0  # targets the router was certain to do nothing with, not asked

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
        key = (d.target, self._mask(d.reason))
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
        if (
            d.target is not None
            and state.last_price is not None
            and self._no_order(d.strategy, d.target, state.last_price)
        ):
            self.skipped += 1
            return  # most bars: the book already is where the target wants it
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

    def _mask(self, reason: str) -> str:
        """The reason with its numbers masked (``_NUMBERS``), by its shape."""
        shape = reason.translate(_DIGITS)
        masked = self._masked.get(shape)
        if masked is None:
            if len(self._masked) >= _SHAPES_KEPT:
                self._masked.clear()
            masked = self._masked[shape] = _NUMBERS.sub("#", reason)
        return masked

    def _no_order(self, strategy: str, target: float, price: float) -> bool:
        """True when ``OrderRouter.rebalance`` would certainly do nothing for this target: no
        maker quote resting and no rest of an earlier target to replace, and either an order of
        the strategy in flight (the target waits for it) or the sizing rule's float pre-check
        finding no order."""
        router = self.state.need_router()
        if strategy in router.quotes.resting or strategy in router.follow:
            return False
        if strategy in router.ledger.in_flight:
            return True
        book = router.books[strategy]
        seen = self._floats.get(strategy)
        if seen is None or seen[0] != book.fills:
            cash = float(book.cash - book.fees)
            seen = self._floats[strategy] = (book.fills, cash, float(book.qty))
        if self._limits is None:
            self._limits = (float(router.min_trade_fraction), float(router.instrument.min_qty))
        return not may_size_order(seen[1], seen[2], target, price, *self._limits)
