"""The trading worker: the engine's composition root and its clock driver.

feed → one-second ticks → :class:`BarPipeline` → :class:`Decider` (strategies, risk, router) →
fills → books → journal, then :class:`Duties`; :class:`Lifecycle` starts and stops the run.
One code path for live trading, paper trading, replay and backtest. Time comes from the injected
clock; bars close on one-second ticks (driven by the feed's own timestamps in a replay, and by a
timer in live trading), so a backtest sees exactly what live trading would, as fast as the
machine allows. Forecasts come from a background pump (lock-step with the bars in a backtest).
A backtest whose parts never wait (simulated venue, forecasts computed before the replay) is
driven synchronously: :meth:`Worker.step` runs one feed batch to its end and settles the venue,
with no event-loop round trip per tick (``engine/sync.py``); everything else takes the async route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import pandas as pd
from cryptoarena.clock import Clock, SimClock
from cryptoarena.data.feed import BatchFeed, MarketFeed
from cryptoarena.data.records import NS_PER_S, Trade
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.engine.bars import BarPipeline
from cryptoarena.trading.engine.decide import Decider
from cryptoarena.trading.engine.duties import Duties
from cryptoarena.trading.engine.lifecycle import Lifecycle
from cryptoarena.trading.engine.ports import EngineJournal
from cryptoarena.trading.engine.result import WorkerResult
from cryptoarena.trading.engine.runner import StrategyRunner
from cryptoarena.trading.engine.state import Recorder, RunState
from cryptoarena.trading.engine.sync import LoopTasks, Soon, Tasks, run_now
from cryptoarena.trading.exchange.base import Exchange, TapeVenue
from cryptoarena.trading.execution.markouts import MarkoutPrices, MarkoutTracker
from cryptoarena.trading.execution.router import OrderRouter
from cryptoarena.trading.forecasts.pump import ForecastPump, ForecastSource
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.risk.killswitch import KillGuard, KillSwitch
from cryptoarena.trading.risk.manager import RiskManager

logger = logging.getLogger(__name__)

# The synchronous drive hands the event loop back this often (batches): signals, stop requests.
SYNC_YIELD_EVERY = 256
# The synchronous drive reads the kill file at most this often (wall time), not every tick.
KILL_POLL_SYNC_S = 0.05
# A backtest journals about this many equity snapshots per strategy over its span.
BACKTEST_SNAPSHOTS = 1_440


class Worker:
    def __init__(
        self,
        config: ArenaConfig,
        *,
        feed: MarketFeed,
        exchange: Exchange,
        journal: EngineJournal,
        clock: Clock,
        run_id: str,
        forecasts: ForecastSource | None = None,
        kill_switch: KillSwitch | None = None,
        source_name: str = "replay",
        durable_orders: bool = False,
        recorded_bars: Callable[[int, int], pd.DataFrame] | None = None,
        trade_from_ns: int = 0,
        run_notes: dict[str, Any] | None = None,
        sync: bool | None = None,
        markout_prices: MarkoutPrices | None = None,
    ) -> None:
        self.config = config
        self.feed = feed
        self.exchange = exchange
        self.journal = journal
        self.clock = clock
        self.run_id = run_id
        self.symbol = config.arena.symbol
        # A venue that fills against the tape gets every batch the feed gives (declared).
        self._tape_venue: TapeVenue | None = (
            cast("TapeVenue", exchange) if exchange.capabilities.tape_fills else None
        )
        # A simulated clock means a backtest: forecasts in lock-step, orders sent inline.
        self.lockstep = clock.simulated
        self._sim_clock = cast("SimClock", clock) if clock.simulated else None
        # A backtest (as fast as possible) journals equity at its own, coarser interval.
        self.backtest = self.lockstep and feed.capabilities.as_fast_as_possible
        self.result = WorkerResult(run_id)
        self.state = RunState()
        self.record = Recorder(journal, self.result)
        # Every fill's 1/5/15 s markout, from the same trades and fills the engine sees.
        self.markouts = MarkoutTracker(self.record, markout_prices)
        strategies = config.build_strategies()
        self.runners = [StrategyRunner(s) for s in strategies]
        # The synchronous drive (no event-loop round trip per tick) where nothing can wait:
        # chosen by capability, or forced (tests compare both drives on the same replay).
        if not any(s.uses_forecast for s in strategies):
            forecasts = None  # nobody asks for one: the source's waits do not matter
        capable = "orders wait for durable journal records" if durable_orders else None
        capable = capable or self._sync_capable(forecasts)
        if sync and capable is not None:
            raise ValueError(f"cannot drive this run synchronously: {capable}")
        self.sync = capable is None if sync is None else sync
        self.tasks: Tasks = Soon() if self.sync else LoopTasks()
        capital = Decimal(str(config.arena.capital))
        self.books = {s.name: Ledger(s.name, capital=capital) for s in strategies}
        self.risk = RiskManager(
            config.risk,
            {s.name: config.arena.capital for s in strategies},
            self.record.risk_event,
            journal_state=self.record.risk_state,
        )
        self.bars = BarPipeline(self.runners)
        self.pump: ForecastPump | None = None
        if forecasts is not None and any(r.strategy.uses_forecast for r in self.runners):
            self.pump = ForecastPump(
                forecasts,
                self.symbol,
                window=config.arena.forecast_window,
                max_age_s=config.arena.forecast_max_age_s,
                record=self.record,
                tasks=self.tasks if self.sync else None,
            )
        self.decider = Decider(config, groups=self.bars.groups, risk=self.risk, pump=self.pump,
                               record=self.record, state=self.state, result=self.result)  # fmt: skip
        # The enforcing side of the kill switch: engage/release verified against its own token.
        self.kill_switch = kill_switch
        guard = KillGuard(kill_switch) if kill_switch is not None else None
        self.duties = Duties(
            config,
            books=self.books,
            kinds={s.name: s.kind for s in strategies},
            risk=self.risk,
            journal=journal,
            record=self.record,
            state=self.state,
            result=self.result,
            pump=self.pump,
            kill_guard=guard,
            journal_equity_every_s=self._journal_equity_every_s() if self.backtest else None,
            kill_poll_s=KILL_POLL_SYNC_S if self.sync else 0.0,
        )
        self.lifecycle = Lifecycle(
            config,
            exchange=exchange,
            journal=journal,
            clock=clock,
            books=self.books,
            runners=self.runners,
            risk=self.risk,
            record=self.record,
            state=self.state,
            result=self.result,
            pump=self.pump,
            duties=self.duties,
            run_id=run_id,
            source_name=source_name,
            lockstep=self.lockstep,
            durable_orders=durable_orders,
            # Live: the collector's recorded 1 s bars, for predictions that came due while the
            # worker was down (a replay re-reads its own bars instead).
            recorded_bars=recorded_bars,
            # Out of sample by construction: bars before this only warm the strategies up.
            trade_from_ns=trade_from_ns,
            # How often equity is journaled (a backtest's coarser interval): the report reads it.
            run_notes={**(run_notes or {}), "equity_journal_every_s": self.duties.journal_every_s},
            tasks=self.tasks,
            markouts=self.markouts,
        )
        self._next_tick_s: int | None = None
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._lock = asyncio.Lock()
        # Benchmarks set a list here to collect tick-to-decision latencies (ns).
        self.tick_latencies: list[int] | None = None

    def _journal_equity_every_s(self) -> float:
        """A backtest's equity journal interval: about ``BACKTEST_SNAPSHOTS`` per strategy over
        the replay's span, never finer than ``equity_every_s`` (a short backtest keeps live
        resolution) nor coarser than ``backtest_equity_every_s``."""
        arena = self.config.arena
        span_s = self.feed.capabilities.span_ns / NS_PER_S
        return min(
            arena.backtest_equity_every_s, max(arena.equity_every_s, span_s / BACKTEST_SNAPSHOTS)
        )

    def _sync_capable(self, forecasts: ForecastSource | None) -> str | None:
        """None if the run can be driven synchronously, else why not: a simulated clock, a
        simulated venue whose updates can be pulled, a feed with plain batches (as fast as
        possible), and forecasts that never wait (none, or computed before the replay)."""
        if not self.lockstep:
            return "the clock is not simulated"
        if not self.exchange.capabilities.pull_updates:
            return f"{type(self.exchange).__name__} is not a simulated venue"
        declared = self.feed.capabilities
        if not (declared.batches and declared.as_fast_as_possible):
            return "the feed is not an as-fast-as-possible replay"
        if forecasts is not None and forecasts.capabilities.waits:
            return f"{type(forecasts).__name__} forecasts may wait"
        return None

    @property
    def router(self) -> OrderRouter | None:
        return self.state.router

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
        updates = await self.lifecycle.start()
        ticker = (
            None if self.lockstep else asyncio.get_running_loop().create_task(self._live_ticker())
        )
        try:
            if self.sync:
                await self._drive_sync()
            else:
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
            try:
                await self.lifecycle.stop(updates)
            finally:
                self.record.flush_buffer()  # a crash in the stop itself loses nothing either
        return self.result

    async def _drive_sync(self) -> None:
        """The backtest's drive: batch after batch, each run to its end without the event loop
        (:meth:`step`), handing the loop back only every ``SYNC_YIELD_EVERY`` batches (signals,
        a stop request)."""
        batches = cast("BatchFeed", self.feed).batches()  # declared (_sync_capable)
        for k, batch in enumerate(batches):
            if self._stop.is_set():
                break
            self.step(batch)
            if k % SYNC_YIELD_EVERY == SYNC_YIELD_EVERY - 1:
                await asyncio.sleep(0)
        self._stopped()

    def step(self, batch: list[Trade]) -> None:
        """One feed batch through the engine synchronously, then the venue settled: its order
        updates and fills handed to the ledger, in order, before anything else is decided."""
        run_now(self._step(batch))
        # A hard kill loses only what was buffered: at most ~0.5 s of wall time.
        self.record.checkpoint()
        self.duties.backpressure_now()

    async def _step(self, batch: list[Trade]) -> None:
        await self._on_batch(batch)
        await self.tasks.pause()

    def _stopped(self) -> None:
        if self._stop.is_set():
            self.result.stopped_by = self._stop_reason
            self.result.ended_by = (
                "signal" if self._stop_reason.startswith("signal") else "stop requested"
            )
            # A replay stopped before its end did not cover its span; live runs end this way.
            self.result.complete = not self.lockstep

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
                await self.tasks.pause()
                if self.lockstep:
                    await self.duties.backpressure()
        finally:
            stop_wait.cancel()
        self._stopped()

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
        if self._sim_clock is not None:
            self._sim_clock.advance_to(last.ts)
        self.bars.add(trades)
        self.state.touch.update(trades)
        self.state.last_price = last.price
        self.state.last_trade_ns = last.ts
        self.result.trades += len(trades)
        self.markouts.on_trades(trades)  # before this batch's fills: their horizons are ahead
        # A paper venue fills against the same tape, after the strategies saw it (also while
        # fast-forwarding a resumed replay: it then only learns the last price).
        router = self.state.router
        if self._tape_venue is not None and router is not None:
            # Book the paper fills now (the update stream repeats them; exec ids dedupe).
            for fill in self._tape_venue.on_trades(trades):
                router.ledger.on_fill(fill)

    async def _tick_to(self, now_ns: int) -> None:
        """Close every bar that ended by ``now_ns``, one second at a time, as live would."""
        target_s = now_ns // NS_PER_S
        if self._next_tick_s is None:
            self._next_tick_s = target_s
            self.duties.start_timers(target_s * NS_PER_S)
            return
        while self._next_tick_s <= target_s:
            tick_ns = self._next_tick_s * NS_PER_S
            self._next_tick_s += 1
            if self._sim_clock is not None:
                self._sim_clock.advance_to(tick_ns)
            # Let the exchange's order updates and fills reach the books before deciding.
            await self.tasks.pause()
            await self._on_tick(tick_ns)

    async def _on_tick(self, tick_ns: int) -> None:
        live = tick_ns > self.state.checkpoint_ns
        started = time.perf_counter_ns()
        waited = 0
        closed = False
        router, pump = self.state.router, self.pump
        for bar_ns, bars in self.bars.close(tick_ns):
            closed = True
            self.result.bars += len(bars)
            if bar_ns == NS_PER_S and router is not None:
                router.band_ref = bars[-1].vwap
            if bar_ns == NS_PER_S and pump is not None:
                for bar in bars:
                    pump.resolve(bar, self.record.set_prediction_outcome)
                if self.lockstep and live:
                    # Waiting for the model is network/inference time, not the worker's own.
                    t_wait = time.perf_counter_ns()
                    await pump.settle()
                    waited += time.perf_counter_ns() - t_wait
            for bar in bars:
                await self.decider.step(bar_ns, bar, tick_ns, live)
            if bar_ns == NS_PER_S and pump is not None and live:
                pump.on_bar(bars[-1], tick_ns)
            elif bar_ns == NS_PER_S and pump is not None:
                pump.window.append(bars[-1])
        if self.tick_latencies is not None and closed and live:
            # Tick to decision: bars closed, every strategy decided, risk checked, orders sent.
            self.tick_latencies.append(time.perf_counter_ns() - started - waited)
        if not live:
            self.duties.replayed(tick_ns)
            return
        await self.duties.housekeeping(tick_ns)
