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
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptoarena.clock import Clock, SimClock
from cryptoarena.data.bars import BarBuilder
from cryptoarena.data.feed import MarketFeed
from cryptoarena.data.records import NS_PER_S, Bar, Trade
from cryptoarena.trading.arena_config import ArenaConfig
from cryptoarena.trading.book import Book
from cryptoarena.trading.exchange.base import Exchange
from cryptoarena.trading.forecasts import ForecastPump, ForecastSource
from cryptoarena.trading.orders import incarnation_tag
from cryptoarena.trading.restore import reconcile, restore_books, seed_paper_exchange
from cryptoarena.trading.risk.killswitch import KillSwitch
from cryptoarena.trading.risk.manager import RiskManager
from cryptoarena.trading.router import OrderRouter
from cryptoarena.trading.runner import Decision, StrategyCrash, StrategyRunner
from cryptoarena.trading.strategies import AI_KINDS, CLASSICAL_KINDS
from cryptoarena.trading.strategies.base import StrategyContext

logger = logging.getLogger(__name__)

_NUMBERS = re.compile(r"[-+]?\d[\d.,]*")


def family(kind: str) -> str:
    return "ai" if kind in AI_KINDS else "classical" if kind in CLASSICAL_KINDS else "reference"


@dataclass
class WorkerResult:
    run_id: str
    trades: int = 0
    bars: int = 0
    decisions: int = 0
    orders: int = 0
    fills: int = 0
    late_trades: int = 0
    stopped_by: str = "feed ended"
    restored: dict[str, Any] = field(default_factory=dict)
    equity: dict[str, float] = field(default_factory=dict)
    # Events handed to the journal, by kind (what "every event exactly once" is checked against).
    journaled: Counter[str] = field(default_factory=Counter)


class Worker:
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
    ) -> None:
        self.config = config
        self.feed = feed
        self.exchange = exchange
        self.journal = journal
        self.clock = clock
        self.run_id = run_id
        self.kill_switch = kill_switch
        self.source_name = source_name
        # A simulated clock means a backtest: forecasts in lock-step, orders sent inline.
        self.lockstep = isinstance(clock, SimClock)
        self.durable_orders = durable_orders
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
        await self.exchange.start()
        instrument = await self.exchange.instrument(self.symbol)
        incarnation = incarnation_tag(time.time_ns())
        self.router = router = OrderRouter(
            exchange=self.exchange,
            instrument=instrument,
            books=self.books,
            risk=self.risk,
            record=self._record,
            clock=self.clock,
            run_id=self.run_id,
            incarnation=incarnation,
            min_trade_fraction=self.config.arena.min_trade_fraction,
            order_timeout_s=self.config.arena.order_timeout_s,
            inline=self.lockstep,
        )
        if self.durable_orders:
            router.before_send = self._flush_journal
        report = restore_books(self.journal, self.run_id, self.books, router)
        if report.fills_replayed and seed_paper_exchange(self.exchange, self.symbol, self.books):
            report.notes.append("paper venue seeded from the journal's books")
        updates = asyncio.get_running_loop().create_task(self._consume_updates())
        await asyncio.sleep(0)
        report = await reconcile(
            self.journal, self.run_id, router, report, now_ns=self.clock.now_ns()
        )
        self._checkpoint_ns = report.checkpoint_ns
        self.result.restored = report.doc()
        if report.mismatch:
            self.risk.halt_all(f"reconcile: {report.mismatch}", self.clock.now_ns())
        self._record(
            "runs",
            {
                "event": "started",
                "incarnation": incarnation,
                "source": self.source_name,
                "exchange": getattr(self.exchange, "name", "?"),
                "symbol": self.symbol,
                "strategies": [
                    {
                        "name": r.name,
                        "kind": r.strategy.kind,
                        "family": family(r.strategy.kind),
                        "config": r.strategy.config.model_dump(),
                    }
                    for r in self.runners
                ],
                "arena": self.config.arena.model_dump(),
                "risk": self.config.risk.model_dump(by_alias=True),
                "restored": report.doc(),
            },
        )
        ticker = (
            None if self.lockstep else asyncio.get_running_loop().create_task(self._live_ticker())
        )
        try:
            await self._consume_feed()
        finally:
            if ticker is not None:
                ticker.cancel()
            await self._shutdown(updates)
        return self.result

    async def _consume_updates(self) -> None:
        assert self.router is not None
        async for update in self.exchange.updates():
            self.router.on_update(update)

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
                self.router.on_fill(fill)

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

    async def _housekeeping(self, now_ns: int) -> None:
        assert self.router is not None
        if self.kill_switch is not None:
            status = self.kill_switch.status()
            if status is not None and self.risk.killed is None:
                self.risk.kill(str(status.get("reason", "kill switch")), now_ns)
            elif status is None and self.risk.killed is not None:
                self.risk.unkill(now_ns)  # released: strategies trade again from their next bar
        if self.last_price is not None:
            for name in self.books:
                if self.books[name].qty != 0 and self._must_flatten(name):
                    await self.router.rebalance(
                        name,
                        0.0,
                        price=self.last_price,
                        now_ns=now_ns,
                        last_trade_ns=self.last_trade_ns,
                        uses_forecast=False,
                        forecast_age_s=None,
                        decision_id=None,
                    )
        await self.router.expire(now_ns)
        if now_ns >= self._next_progress_ns:
            self._next_progress_ns = now_ns + 600 * NS_PER_S
            r = self.result
            logger.info(
                "progress: t=%d trades=%d bars=%d orders=%d fills=%d",
                now_ns // NS_PER_S,
                r.trades,
                r.bars,
                r.orders,
                sum(b.fills for b in self.books.values()),
            )
        if now_ns >= self._next_equity_ns:
            self._next_equity_ns = now_ns + self._equity_every_ns
            self.snapshot(now_ns)

    def snapshot(self, now_ns: int, *, final: bool = False) -> None:
        """Equity per strategy (journal), loss/drawdown checks, and the summary read models."""
        if self.last_price is None or self.router is None:
            return
        summaries = final or now_ns >= self._next_summary_ns
        if summaries:
            self._next_summary_ns = now_ns + self._summary_every_ns
        mark = Decimal(str(self.last_price))
        total = 0.0
        for name, book in self.books.items():
            doc = book.snapshot(mark, now_ns)
            self._record("equity", doc)
            total += doc["equity"]
            self.risk.on_equity(name, doc["equity"], now_ns)
            self.result.equity[name] = doc["equity"]
            if not summaries:
                continue
            kind = self.kinds[name]
            self.journal.upsert_summary(
                name,
                {
                    "kind": kind,
                    "family": family(kind),
                    "equity": doc["equity"],
                    "pnl": doc["equity"] - float(book.capital),
                    "realised": doc["realised"],
                    "unrealised": doc["unrealised"],
                    "fees": doc["fees"],
                    "qty": doc["qty"],
                    "fills": book.fills,
                    "orders": self.router.orders_sent.get(name, 0),
                    "round_trips": book.round_trips,
                    "wins": book.wins,
                    "win_rate": book.wins / book.round_trips if book.round_trips else None,
                    "vetoes": self.risk.vetoes.get(name, 0),
                    "halted": self.risk.halted.get(name),
                    "exposure": doc["exposure"],
                    "last_decision": self._last_decision.get(name, ""),
                    "ts_ns": now_ns,
                },
            )
        self.risk.on_total_equity(total, now_ns)

    async def _journal_backpressure(self) -> None:
        # A backtest can outrun the database: wait for the journal's queue rather than make it
        # overflow to its (fsync-per-event) spill file on the hot path.
        writer = getattr(self.journal, "_writer", None)
        queue = getattr(writer, "_queue", None)
        if queue is None or queue.qsize() < 4000:
            return
        while queue.qsize() > 1000:
            await asyncio.sleep(0.005)

    async def _flush_journal(self) -> None:
        await asyncio.to_thread(self.journal.flush, 2.0)

    async def _shutdown(self, updates: asyncio.Task[None]) -> None:
        router = self.router
        now = self.clock.now_ns()
        if router is not None:
            await router.drain()
            if self.config.arena.flatten_on_stop and self.last_price is not None:
                for name, book in self.books.items():
                    if book.qty != 0:
                        await router.rebalance(
                            name,
                            0.0,
                            price=self.last_price,
                            now_ns=now,
                            last_trade_ns=now,
                            uses_forecast=False,
                            forecast_age_s=None,
                            decision_id=None,
                        )
                await router.drain()
                await asyncio.sleep(0.5 if not self.lockstep else 0)
            await router.cancel_all()
            # Let the exchange's last order updates and fills arrive before the final books.
            await asyncio.sleep(0 if self.lockstep else 0.5)
            self.snapshot(now, final=True)
        if self.pump is not None:
            unresolved = len(self.pump.pending)
            await self.pump.close()
        else:
            unresolved = 0
        await asyncio.sleep(0)
        positions: dict[str, str] = {}
        if router is not None:
            positions["books_qty"] = str(sum((b.qty for b in self.books.values()), Decimal(0)))
            try:
                positions["exchange_qty"] = str((await self.exchange.position(self.symbol)).qty)
            except Exception as exc:  # reported, not fatal: the journal must still be closed
                positions["exchange_error"] = f"{type(exc).__name__}: {exc}"
        await self.exchange.close()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(updates, timeout=2.0)
        if not updates.done():
            updates.cancel()
        self.result.fills = sum(b.fills for b in self.books.values())
        self._record(
            "runs",
            {
                "event": "stopped",
                "stopped_by": self.result.stopped_by,
                "trades": self.result.trades,
                "bars": self.result.bars,
                "orders": self.result.orders,
                "fills": self.result.fills,
                "late_trades": self.result.late_trades,
                "unresolved_predictions": unresolved,
                "equity": self.result.equity,
                "risk": self.risk.state(),
                **positions,
            },
        )
        self.journal.flush(10.0)
