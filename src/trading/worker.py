"""The trading worker: feed → bar builders → strategies → risk → orders → fills → books → journal.

One code path for live trading, paper trading, replay and backtest. Time comes from the injected
clock; bars close on one-second ticks (driven by the feed's own timestamps in a replay, and by a
timer in live trading), so a backtest sees exactly what live trading would, as fast as the
machine allows. Forecasts come from a background pump (lock-step with the bars in a backtest).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pandas as pd
from cryptoarena.clock import Clock, SimClock
from cryptoarena.data.bars import BarBuilder
from cryptoarena.data.feed import MarketFeed
from cryptoarena.data.records import NS_PER_S, Trade
from cryptoarena.trading.arena_config import ArenaConfig
from cryptoarena.trading.book import Book
from cryptoarena.trading.deciding import WorkerDecisions
from cryptoarena.trading.duties import WorkerDuties, WorkerResult
from cryptoarena.trading.exchange.base import Exchange
from cryptoarena.trading.forecasts import ForecastPump, ForecastSource
from cryptoarena.trading.risk.killswitch import KillGuard, KillSwitch
from cryptoarena.trading.risk.manager import RiskManager
from cryptoarena.trading.router import OrderRouter
from cryptoarena.trading.runner import StrategyRunner

logger = logging.getLogger(__name__)


class Worker(WorkerDecisions, WorkerDuties):
    def __init__(
        self,
        config: ArenaConfig,
        *,
        feed: MarketFeed,
        exchange: Exchange,
        journal: Any,
        clock: Clock,
        run_id: str,
        forecasts: ForecastSource | None = None,
        kill_switch: KillSwitch | None = None,
        source_name: str = "replay",
        durable_orders: bool = False,
        recorded_bars: Callable[[int, int], pd.DataFrame] | None = None,
        trade_from_ns: int = 0,
        run_notes: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.feed = feed
        self.exchange = exchange
        self.journal = journal
        self.clock = clock
        self.run_id = run_id
        self.kill_switch = kill_switch
        # The enforcing side: engage/release verified against the switch's (this worker's) token.
        self.kill_guard = KillGuard(kill_switch) if kill_switch is not None else None
        self.source_name = source_name
        # A simulated clock means a backtest: forecasts in lock-step, orders sent inline.
        self.lockstep = isinstance(clock, SimClock)
        self.durable_orders = durable_orders
        # Live: 1-second bars recorded by the collector (the lake), for predictions that came
        # due while the worker was down. A replay re-reads its own bars instead.
        self.recorded_bars = recorded_bars
        # Out of sample by construction: bars before this only warm the strategies up (as a
        # resumed replay's do); nobody trades on them.
        self.trade_from_ns = trade_from_ns
        # What the session knows about the run (forecast source, in/out of sample): journaled.
        self.run_notes = dict(run_notes or {})
        self.symbol = config.arena.symbol
        strategies = config.build_strategies()
        self.runners = [StrategyRunner(s) for s in strategies]
        self.kinds = {s.name: s.kind for s in strategies}
        capital = Decimal(str(config.arena.capital))
        self.books = {s.name: Book(s.name, capital=capital) for s in strategies}
        self.risk = RiskManager(
            config.risk, {s.name: config.arena.capital for s in strategies}, self._risk_event
        )
        self.builders: dict[int, BarBuilder] = {}
        self.groups: dict[int, list[StrategyRunner]] = {}
        for runner in self.runners:
            self.builders.setdefault(runner.bar_ns, BarBuilder(runner.bar_ns))
            self.groups.setdefault(runner.bar_ns, []).append(runner)
        # The 1-second builder also feeds the forecast pump and prediction outcomes.
        self.builders.setdefault(NS_PER_S, BarBuilder(NS_PER_S))
        self.groups.setdefault(NS_PER_S, [])
        needs_forecast = any(r.strategy.uses_forecast for r in self.runners)
        self.pump: ForecastPump | None = None
        if forecasts is not None and needs_forecast:
            self.pump = ForecastPump(
                forecasts,
                self.symbol,
                window=config.arena.forecast_window,
                max_age_s=config.arena.forecast_max_age_s,
                record=self._record,
            )
        self.router: OrderRouter | None = None
        self.result = WorkerResult(run_id)
        self.last_price: float | None = None
        self.last_trade_ns: int | None = None
        self._next_tick_s: int | None = None
        self._next_equity_ns = 0
        self._equity_every_ns = int(config.arena.equity_every_s * NS_PER_S)
        self._summary_every_ns = int(config.arena.summary_every_s * NS_PER_S)
        self._next_summary_ns = 0
        self._next_progress_ns = 0
        self._last_journaled: dict[str, tuple[Any, str]] = {}
        self._last_decision: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._lock = asyncio.Lock()
        self._checkpoint_ns = 0
        # Benchmarks set a list here to collect tick-to-decision latencies (ns).
        self.tick_latencies: list[int] | None = None

    # -- journal helpers ------------------------------------------------------------------
    def _record(self, kind: str, doc: dict[str, Any]) -> str:
        self.result.journaled[kind] += 1
        return str(self.journal.record(kind, doc))

    def _risk_event(self, doc: dict[str, Any]) -> None:
        self._record("risk_events", doc)

    def _must_flatten(self, name: str) -> bool:
        """Halted (loss, drawdown, crash), globally halted, or killed with flatten_on_kill."""
        risk = self.risk
        return (
            name in risk.halted
            or risk.global_halt is not None
            or (risk.killed is not None and self.config.arena.flatten_on_kill)
        )

    # -- control ----------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, f"signal {sig.name}")

    # -- the run ----------------------------------------------------------------------------
    async def run(self) -> WorkerResult:
        updates = await self._start_up()
        ticker = (
            None if self.lockstep else asyncio.get_running_loop().create_task(self._live_ticker())
        )
        try:
            await self._consume_feed()
        except BaseException as exc:
            # Recorded in the "stopped" record (the run is incomplete), then re-raised.
            self.result.stopped_by = f"crashed: {type(exc).__name__}: {exc}"
            self.result.ended_by, self.result.complete = "crash", False
            self.result.error = f"{type(exc).__name__}: {exc}"
            logger.error("worker crashed: %s", self.result.error)
            raise
        finally:
            if ticker is not None:
                ticker.cancel()
            await self._shutdown(updates)
        return self.result

    async def _consume_updates(self) -> None:
        assert self.router is not None
        async for update in self.exchange.updates():
            self.router.ledger.on_update(update)

    async def _consume_feed(self) -> None:
        stop_wait = asyncio.get_running_loop().create_task(self._stop.wait())
        feed_iter = self.feed.__aiter__()
        try:
            while not self._stop.is_set():
                next_batch = asyncio.ensure_future(feed_iter.__anext__())
                done, _ = await asyncio.wait(
                    {next_batch, stop_wait}, return_when=asyncio.FIRST_COMPLETED
                )
                if next_batch not in done:
                    next_batch.cancel()
                    break
                try:
                    batch = next_batch.result()
                except StopAsyncIteration:
                    break
                async with self._lock:
                    await self._on_batch(batch)
                # Let fills and forecasts land before the next batch.
                await asyncio.sleep(0)
                if self.lockstep:
                    await self._journal_backpressure()
        finally:
            stop_wait.cancel()
        if self._stop.is_set():
            self.result.stopped_by = self._stop_reason
            self.result.ended_by = (
                "signal" if self._stop_reason.startswith("signal") else "stop requested"
            )
            # A replay stopped before its end did not cover its span; live runs end this way.
            self.result.complete = not self.lockstep

    async def _live_ticker(self) -> None:
        # Live: close bars on time even when nobody trades (0.3 s grace for late prints).
        while True:
            await asyncio.sleep(0.25)
            async with self._lock:
                await self._tick_to(self.clock.now_ns() - 300_000_000)

    async def _on_batch(self, batch: list[Trade]) -> None:
        trades = [t for t in batch if t.symbol == self.symbol]
        i, n = 0, len(trades)
        while i < n:
            second = trades[i].ts // NS_PER_S
            j = i + 1
            while j < n and trades[j].ts // NS_PER_S == second:
                j += 1
            await self._tick_to(second * NS_PER_S)
            await self._on_trades(trades[i:j])
            i = j

    async def _on_trades(self, trades: list[Trade]) -> None:
        floor = (self._next_tick_s or 0) - 1
        if trades[0].ts // NS_PER_S < floor:
            late = [t for t in trades if t.ts // NS_PER_S < floor]
            self.result.late_trades += len(late)
            trades = [t for t in trades if t.ts // NS_PER_S >= floor]
            if not trades:
                return
        last = trades[-1]
        if isinstance(self.clock, SimClock):
            self.clock.advance_to(last.ts)
        ts = [t.ts for t in trades]
        px = [t.price for t in trades]
        qty = [t.size for t in trades]
        side = [t.side for t in trades]
        for builder in self.builders.values():
            builder.add_many(ts, px, qty, side)
        self.last_price = last.price
        self.last_trade_ns = last.ts
        self.result.trades += len(trades)
        # A paper venue fills against the same tape, after the strategies saw it (also while
        # fast-forwarding a resumed replay: it then only learns the last price).
        on_trades = getattr(self.exchange, "on_trades", None)
        if on_trades is not None and self.router is not None:
            # Book the paper fills now (the update stream repeats them; exec ids dedupe).
            for fill in on_trades(trades):
                self.router.ledger.on_fill(fill)

    async def _tick_to(self, now_ns: int) -> None:
        """Close every bar that ended by ``now_ns``, one second at a time, as live would."""
        target_s = now_ns // NS_PER_S
        if self._next_tick_s is None:
            self._next_tick_s = target_s
            self._next_equity_ns = target_s * NS_PER_S + self._equity_every_ns
            return
        while self._next_tick_s <= target_s:
            tick_ns = self._next_tick_s * NS_PER_S
            self._next_tick_s += 1
            if isinstance(self.clock, SimClock):
                self.clock.advance_to(tick_ns)
            # Let the exchange's order updates and fills reach the books before deciding.
            await asyncio.sleep(0)
            await self._on_tick(tick_ns)

    async def _on_tick(self, tick_ns: int) -> None:
        live = tick_ns > self._checkpoint_ns
        started = time.perf_counter_ns()
        waited = 0
        closed = False
        for bar_ns, builder in self.builders.items():
            bars = builder.advance(tick_ns)
            if not bars:
                continue
            closed = True
            self.result.bars += len(bars)
            if bar_ns == NS_PER_S and self.router is not None:
                self.router.band_ref = bars[-1].vwap
            if bar_ns == NS_PER_S and self.pump is not None:
                for bar in bars:
                    self.pump.resolve(bar, self.journal.set_prediction_outcome)
                if self.lockstep and live:
                    # Waiting for the model is network/inference time, not the worker's own.
                    t_wait = time.perf_counter_ns()
                    await self.pump.settle()
                    waited += time.perf_counter_ns() - t_wait
            for bar in bars:
                await self._step_group(bar_ns, bar, tick_ns, live)
            if bar_ns == NS_PER_S and self.pump is not None and live:
                self.pump.on_bar(bars[-1], tick_ns)
            elif bar_ns == NS_PER_S and self.pump is not None:
                self.pump.window.append(bars[-1])
        if self.tick_latencies is not None and closed and live:
            # Tick to decision: bars closed, every strategy decided, risk checked, orders sent.
            self.tick_latencies.append(time.perf_counter_ns() - started - waited)
        if not live:
            return
        await self._housekeeping(tick_ns)
