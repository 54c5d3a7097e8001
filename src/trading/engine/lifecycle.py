"""The engine's start-up and shutdown.

Start: connect, build the order ledger and router (they need the venue's instrument), rebuild
the books from the journal, take over pending predictions, reconcile with the exchange, and
journal the "started" record. Stop: drain and cancel what is in flight (flatten first with
``flatten_on_stop``), a final snapshot, and the "stopped" record saying how the run ended."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import pandas as pd
from cryptoarena.clock import Clock
from cryptoarena.data.records import NS_PER_S
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.engine.duties import Duties
from cryptoarena.trading.engine.ports import EngineJournal
from cryptoarena.trading.engine.restore import (
    pending_predictions,
    reconcile,
    restore_books,
    restore_follow_ups,
    restore_risk,
    restore_working_orders,
    seed_paper_exchange,
)
from cryptoarena.trading.engine.result import WorkerResult, family
from cryptoarena.trading.engine.runner import StrategyRunner
from cryptoarena.trading.engine.state import Recorder, RunState
from cryptoarena.trading.engine.sync import LoopTasks, Soon, Tasks
from cryptoarena.trading.exchange.base import Exchange, PullVenue, account_bindings
from cryptoarena.trading.exchange.models import Fill, Order
from cryptoarena.trading.execution.maker_quotes import MakerQuotes
from cryptoarena.trading.execution.markouts import MarkoutTracker
from cryptoarena.trading.execution.orders import incarnation_tag
from cryptoarena.trading.execution.router import OrderRouter
from cryptoarena.trading.execution.tracking import OrderLedger
from cryptoarena.trading.forecasts.pump import ForecastPump
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.risk.manager import RiskManager

logger = logging.getLogger(__name__)


class Lifecycle:
    def __init__(
        self,
        config: ArenaConfig,
        *,
        exchange: Exchange,
        journal: EngineJournal,
        clock: Clock,
        books: dict[str, Ledger],
        runners: list[StrategyRunner],
        risk: RiskManager,
        record: Recorder,
        state: RunState,
        result: WorkerResult,
        pump: ForecastPump | None,
        duties: Duties,
        run_id: str,
        source_name: str,
        lockstep: bool,
        durable_orders: bool,
        recorded_bars: Callable[[int, int], pd.DataFrame] | None,
        trade_from_ns: int,
        run_notes: dict[str, Any],
        tasks: Tasks | None = None,
        markouts: MarkoutTracker | None = None,
    ) -> None:
        self.config = config
        self.exchange = exchange
        self.journal = journal
        self.clock = clock
        self.books = books
        self.runners = runners
        self.risk = risk
        self.record = record
        self.state = state
        self.result = result
        self.pump = pump
        self.duties = duties
        self.run_id = run_id
        self.source_name = source_name
        self.lockstep = lockstep
        self.durable_orders = durable_orders
        self.recorded_bars = recorded_bars
        self.trade_from_ns = trade_from_ns
        self.run_notes = run_notes
        self.symbol = config.arena.symbol
        self.markouts = markouts
        # Soon (engine.sync): the synchronous drive; the exchange's updates are then pulled
        # from a plain queue (venue_updates) instead of consumed by a task.
        self.tasks: Tasks = tasks or LoopTasks()
        self.sync = isinstance(self.tasks, Soon)
        self._venue_updates: deque[Order | Fill] | None = None

    async def start(self) -> asyncio.Task[None] | None:
        """Connect, restore the books from the journal, reconcile with the exchange, journal the
        start; returns the task that consumes the exchange's order updates and fills (None in
        the synchronous drive: it pulls them at its settle points, :meth:`drain_updates`)."""
        await self.exchange.start()
        instrument = await self.exchange.instrument(self.symbol)
        incarnation = incarnation_tag(time.time_ns())
        ledger = OrderLedger(
            books=self.books,
            record=self.record,
            clock=self.clock,
            run_id=self.run_id,
            incarnation=incarnation,
            markouts=self.markouts,
        )
        self.state.router = router = OrderRouter(
            exchange=self.exchange,
            instrument=instrument,
            ledger=ledger,
            risk=self.risk,
            record=self.record,
            clock=self.clock,
            min_trade_fraction=self.config.arena.min_trade_fraction,
            order_timeout_s=self.config.arena.order_timeout_s,
            inline=self.lockstep,
            quotes=MakerQuotes(
                {
                    r.name: r.strategy.config.maker_ttl_ns
                    for r in self.runners
                    if r.strategy.config.execution == "maker"
                },
                self.state.touch,
            ),
        )
        if self.durable_orders:
            router.before_send = self._flush_journal
            router.durable_wait_s = self.config.arena.durable_wait_s
        report = restore_books(self.journal, self.run_id, self.books, router)
        report.risk_restored = restore_risk(
            self.journal, self.run_id, self.risk, report.checkpoint_ns
        )
        if self.markouts is not None and report.checkpoint_ns:
            # Fills just before the checkpoint whose markouts the last incarnation never wrote.
            report.markouts_pending = self.markouts.restore(
                self.journal, self.run_id, report.checkpoint_ns
            )
        if self.pump is not None:
            # Predictions pending at a crash: resolved from the recorded bars (a live feed does
            # not replay the past) and, for the rest, from the bars that close from now on.
            pending = pending_predictions(self.journal, self.run_id)
            self.pump.restore_pending(pending)
            report.predictions_pending = len(pending)
            if pending and self.recorded_bars is not None:
                try:
                    bars = self.recorded_bars(pending[0].target_ns - NS_PER_S, self.clock.now_ns())
                except Exception as exc:  # no lake, unreadable: the live bars still resolve some
                    logger.warning("recorded bars unavailable for pending predictions: %s", exc)
                else:
                    report.predictions_resolved = self.pump.resolve_recorded(
                        bars, self.record.set_prediction_outcome
                    )
        if report.fills_replayed and seed_paper_exchange(self.exchange, self.symbol, self.books):
            report.notes.append("paper venue seeded from the journal's books")
        # What was in flight at the checkpoint goes on as the uninterrupted run went on.
        report.orders_working = restore_working_orders(
            self.journal, self.run_id, router, report.checkpoint_ns
        )
        report.follow_ups = restore_follow_ups(
            self.journal, self.run_id, router, report.checkpoint_ns
        )
        updates: asyncio.Task[None] | None = None
        if self.sync:
            assert isinstance(self.tasks, Soon)
            soon = self.tasks
            # The synchronous drive is chosen only for a venue declaring pull_updates.
            venue = cast("PullVenue", self.exchange)
            self._venue_updates = venue.updates_sync(lambda: soon.call_soon(self.drain_updates))
        else:
            updates = asyncio.get_running_loop().create_task(self._consume_updates())
        await self.tasks.pause()
        report = await reconcile(
            self.journal, self.run_id, router, report, now_ns=self.clock.now_ns()
        )
        self.state.checkpoint_ns = max(report.checkpoint_ns, self.trade_from_ns)
        self.result.restored = report.doc()
        if report.mismatch:
            self.risk.halt_all(f"reconcile: {report.mismatch}", self.clock.now_ns())
        self.record(
            "runs",
            {
                "event": "started",
                "incarnation": incarnation,
                "source": self.source_name,
                "exchange": self.exchange.name,
                # Where each strategy trades: its Bybit account, or "paper" (the same tape).
                "accounts": account_bindings(self.exchange)
                or dict.fromkeys(self.books, self.exchange.name),
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
                **self.run_notes,
            },
        )
        self.record.flush_buffer()  # the start (and what reconciling found) at once
        return updates

    def drain_updates(self) -> None:
        """The synchronous drive: hand every venue event waiting to the ledger, in order (what
        the consumer task does live, when the loop wakes it)."""
        pending = self._venue_updates
        if not pending:
            return
        on_update = self.state.need_router().ledger.on_update
        while pending:
            on_update(pending.popleft())

    async def _consume_updates(self) -> None:
        router = self.state.need_router()
        async for update in self.exchange.updates():
            router.ledger.on_update(update)

    async def _flush_journal(self, timeout_s: float) -> bool:
        return bool(await asyncio.to_thread(self.record.flush, timeout_s))

    async def _yield(self, live_s: float) -> None:
        # A backtest only lets what is ready run (the loop's next turn, or the ready queue).
        if self.lockstep:
            await self.tasks.pause()
        else:
            await asyncio.sleep(live_s)

    async def stop(self, updates: asyncio.Task[None] | None) -> None:
        router = self.state.router
        now = self.clock.now_ns()
        if router is not None:
            await router.drain()
            if self.config.arena.flatten_on_stop and self.state.last_price is not None:
                for name, book in self.books.items():
                    if book.qty != 0:
                        await router.flatten(
                            name, price=self.state.last_price, now_ns=now, last_trade_ns=now
                        )
                await router.drain()
                await self._yield(0.5)
            await router.cancel_all()
            # Let the exchange's last order updates and fills arrive before the final books.
            await self._yield(0.5)
            self.duties.snapshot(now, final=True)
        if self.pump is not None:
            if self.lockstep:
                # A backtest is deterministic to its end: the last forecast in flight is
                # recorded (cancelling it would depend on how fast the machine is).
                await self.pump.settle()
            unresolved = len(self.pump.pending) + self.pump.unresolvable
            await self.pump.close()
        else:
            unresolved = 0
        await self.tasks.pause()
        positions: dict[str, str] = {}
        if router is not None:
            positions["books_qty"] = str(sum((b.qty for b in self.books.values()), Decimal(0)))
            try:
                positions["exchange_qty"] = str((await self.exchange.position(self.symbol)).qty)
            except Exception as exc:  # reported, not fatal: the journal must still be closed
                positions["exchange_error"] = f"{type(exc).__name__}: {exc}"
        await self.exchange.close()
        if updates is None:
            self.drain_updates()
        else:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(updates, timeout=2.0)
            if not updates.done():
                updates.cancel()
        if self.markouts is not None:
            if self.result.complete:
                self.markouts.close()  # horizons past the end are None, said so
            else:
                # Stopped short (a crash, a stopped replay): a resumed run takes them over.
                self.markouts.drop()
        self.result.fills = sum(b.fills for b in self.books.values())
        result = self.result
        if result.error is None and self.risk.killed is not None:
            # Trading stopped at the kill, not where the run was meant to end.
            result.ended_by, result.complete = "kill switch", False
        self.record(
            "runs",
            {
                "event": "stopped",
                "stopped_by": self.result.stopped_by,
                "ended_by": result.ended_by,
                "complete": result.complete,
                "error": result.error,
                "killed": self.risk.killed,
                "halted": {
                    name: {"reason": why, "ts_ns": self.risk.halted_at.get(name)}
                    for name, why in self.risk.halted.items()
                },
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
        self.record.flush(10.0)
