"""The worker's periodic and closing duties: the kill switch, forced flattening, order
timeouts, progress, equity snapshots and summary read models, journal back-pressure, and the
graceful stop. A mixin of :class:`cryptoarena.trading.worker.Worker` (kept apart for size)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from cryptoarena.clock import Clock
from cryptoarena.data.records import NS_PER_S
from cryptoarena.trading.arena_config import ArenaConfig
from cryptoarena.trading.book import Book
from cryptoarena.trading.exchange.base import Exchange
from cryptoarena.trading.forecasts import ForecastPump
from cryptoarena.trading.order_tracking import OrderLedger
from cryptoarena.trading.orders import incarnation_tag
from cryptoarena.trading.restore import (
    pending_predictions,
    reconcile,
    restore_books,
    seed_paper_exchange,
)
from cryptoarena.trading.risk.killswitch import KillGuard
from cryptoarena.trading.risk.manager import RiskManager
from cryptoarena.trading.router import OrderRouter
from cryptoarena.trading.runner import StrategyRunner
from cryptoarena.trading.strategies import AI_KINDS, CLASSICAL_KINDS

logger = logging.getLogger(__name__)


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
    # Why the run ended: "feed ended", "signal", "stop requested", "crash", "kill switch"; and
    # whether it covered what it was asked to (a replay to its end, live until told to stop).
    ended_by: str = "feed ended"
    complete: bool = True
    error: str | None = None
    restored: dict[str, Any] = field(default_factory=dict)
    equity: dict[str, float] = field(default_factory=dict)
    # Events handed to the journal, by kind (what "every event exactly once" is checked against).
    journaled: Counter[str] = field(default_factory=Counter)


class WorkerDuties:
    # Set by Worker.__init__ / Worker.run.
    config: ArenaConfig
    books: dict[str, Book]
    kinds: dict[str, str]
    risk: RiskManager
    router: OrderRouter | None
    exchange: Exchange
    journal: Any
    clock: Clock
    kill_guard: KillGuard | None
    pump: ForecastPump | None
    result: WorkerResult
    symbol: str
    lockstep: bool
    last_price: float | None
    last_trade_ns: int | None
    _last_decision: dict[str, str]
    _next_equity_ns: int
    _equity_every_ns: int
    _next_summary_ns: int
    _summary_every_ns: int
    _next_progress_ns: int
    _checkpoint_ns: int
    _flat_logged: bool = False
    _progress_mark: tuple[int, float] | None = None  # (market ns, wall s) at the last progress
    run_id: str
    runners: list[StrategyRunner]
    source_name: str
    durable_orders: bool
    recorded_bars: Callable[[int, int], pd.DataFrame] | None
    trade_from_ns: int
    run_notes: dict[str, Any]

    def _record(self, kind: str, doc: dict[str, Any]) -> str:
        raise NotImplementedError

    def _must_flatten(self, name: str) -> bool:
        raise NotImplementedError

    async def _consume_updates(self) -> None:
        raise NotImplementedError

    async def _start_up(self) -> asyncio.Task[None]:
        """Connect, restore the books from the journal, reconcile with the exchange, journal the
        start; returns the task that consumes the exchange's order updates and fills."""
        await self.exchange.start()
        instrument = await self.exchange.instrument(self.symbol)
        incarnation = incarnation_tag(time.time_ns())
        ledger = OrderLedger(
            books=self.books,
            record=self._record,
            clock=self.clock,
            run_id=self.run_id,
            incarnation=incarnation,
        )
        self.router = router = OrderRouter(
            exchange=self.exchange,
            instrument=instrument,
            ledger=ledger,
            risk=self.risk,
            record=self._record,
            clock=self.clock,
            min_trade_fraction=self.config.arena.min_trade_fraction,
            order_timeout_s=self.config.arena.order_timeout_s,
            inline=self.lockstep,
        )
        if self.durable_orders:
            router.before_send = self._flush_journal
            router.durable_wait_s = self.config.arena.durable_wait_s
        report = restore_books(self.journal, self.run_id, self.books, router)
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
                        bars, self.journal.set_prediction_outcome
                    )
        if report.fills_replayed and seed_paper_exchange(self.exchange, self.symbol, self.books):
            report.notes.append("paper venue seeded from the journal's books")
        updates = asyncio.get_running_loop().create_task(self._consume_updates())
        await asyncio.sleep(0)
        report = await reconcile(
            self.journal, self.run_id, router, report, now_ns=self.clock.now_ns()
        )
        self._checkpoint_ns = max(report.checkpoint_ns, self.trade_from_ns)
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
                # Where each strategy trades: its Bybit account, or "paper" (the same tape).
                "accounts": getattr(self.exchange, "bindings", None)
                or dict.fromkeys(self.books, getattr(self.exchange, "name", "?")),
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
        return updates

    async def _housekeeping(self, now_ns: int) -> None:
        assert self.router is not None
        if self.kill_guard is not None:
            event = self.kill_guard.poll(self.risk.killed is not None)
            if event is None:
                pass
            elif event.type == "kill":
                self.risk.kill(event.reason, now_ns, by=event.by, verified=event.verified)
                logger.warning("kill switch engaged by %s: %s", event.by, self.risk.killed)
                self._flat_logged = False
            elif event.type == "kill_released":
                # Released: strategies trade again from their next bar.
                self.risk.unkill(now_ns, by=event.by, verified=event.verified, reason=event.reason)
                logger.warning("kill switch released by %s: trading resumes", event.by)
            else:
                self.risk.release_refused(event.reason, now_ns, by=event.by)
        all_flat = all(b.qty == 0 for b in self.books.values()) and not self.router.ledger.in_flight
        if self.risk.killed is not None and not self._flat_logged and all_flat:
            self._flat_logged = True
            logger.warning("kill switch: every book is flat, no order in flight")
        if self.last_price is not None:
            for name in self.books:
                if self.books[name].qty != 0 and self._must_flatten(name):
                    await self.router.flatten(
                        name, price=self.last_price, now_ns=now_ns, last_trade_ns=self.last_trade_ns
                    )
            # The rest of a target an exit could not reach alone: the entry of a flip (checked
            # on its own now the close is done) or the next slice of a large exit.
            for name, follow in self.router.follow_ups().items():
                if self._must_flatten(name) and follow.target != 0.0:
                    self.router.follow.pop(name, None)
                    continue
                age = None
                if follow.uses_forecast:
                    forecast, _, age = (
                        self.pump.view(now_ns) if self.pump is not None else (None, None, None)
                    )
                    if forecast is None:  # the forecast behind the target is gone: stand aside
                        self.router.follow.pop(name, None)
                        continue
                cid = await self.router.rebalance(
                    name,
                    follow.target,
                    price=self.last_price,
                    now_ns=now_ns,
                    last_trade_ns=self.last_trade_ns,
                    uses_forecast=follow.uses_forecast,
                    forecast_age_s=age,
                    decision_id=follow.decision_id,
                )
                if cid is not None:
                    self.result.orders += 1
        await self.router.expire(now_ns)
        if now_ns >= self._next_progress_ns:
            self._next_progress_ns = now_ns + 600 * NS_PER_S
            r = self.result
            logger.info(
                "progress: market time %s%s; trades=%d bars=%d orders=%d fills=%d",
                datetime.fromtimestamp(now_ns / NS_PER_S, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                self._progress_rate(now_ns),
                r.trades,
                r.bars,
                r.orders,
                sum(b.fills for b in self.books.values()),
            )
        if now_ns >= self._next_equity_ns:
            self._next_equity_ns = now_ns + self._equity_every_ns
            self.snapshot(now_ns)

    def _progress_rate(self, now_ns: int) -> str:
        """Market time per wall time since the last progress line: the replay's speed."""
        wall = time.monotonic()
        mark, self._progress_mark = self._progress_mark, (now_ns, wall)
        if mark is None or wall <= mark[1]:
            return ""
        return f" ({(now_ns - mark[0]) / NS_PER_S / (wall - mark[1]):,.0f}× real time)"

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
                    "halted_at": self.risk.halted_at.get(name),
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

    async def _flush_journal(self, timeout_s: float) -> bool:
        return bool(await asyncio.to_thread(self.journal.flush, timeout_s))

    async def _shutdown(self, updates: asyncio.Task[None]) -> None:
        router = self.router
        now = self.clock.now_ns()
        if router is not None:
            await router.drain()
            if self.config.arena.flatten_on_stop and self.last_price is not None:
                for name, book in self.books.items():
                    if book.qty != 0:
                        await router.flatten(
                            name, price=self.last_price, now_ns=now, last_trade_ns=now
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
        result = self.result
        if result.error is None and self.risk.killed is not None:
            # Trading stopped at the kill, not where the run was meant to end.
            result.ended_by, result.complete = "kill switch", False
        self._record(
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
        self.journal.flush(10.0)
