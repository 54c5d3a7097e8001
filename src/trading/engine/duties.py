"""The engine's periodic duties, once per live tick after the decisions: the kill switch (through
its guard), forced flattening, the rest of split orders (follow-ups), order expiry, progress, the
equity snapshots with their loss checks and the summary read models; and a backtest's journal
back-pressure."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal

from cryptoarena.console import PROGRESS
from cryptoarena.data.records import NS_PER_S
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.engine.ports import EngineJournal
from cryptoarena.trading.engine.result import WorkerResult, family
from cryptoarena.trading.engine.state import Recorder, RunState, must_flatten
from cryptoarena.trading.forecasts.pump import ForecastPump
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.risk.killswitch import KillGuard
from cryptoarena.trading.risk.manager import RiskManager

logger = logging.getLogger(__name__)


class Duties:
    def __init__(
        self,
        config: ArenaConfig,
        *,
        books: dict[str, Ledger],
        kinds: dict[str, str],
        risk: RiskManager,
        journal: EngineJournal,
        record: Recorder,
        state: RunState,
        result: WorkerResult,
        pump: ForecastPump | None,
        kill_guard: KillGuard | None,
        journal_equity_every_s: float | None = None,
        kill_poll_s: float = 0.0,
    ) -> None:
        self.books = books
        self.kinds = kinds
        self.risk = risk
        self.journal = journal
        self.record = record
        self.state = state
        self.result = result
        self.pump = pump
        self.kill_guard = kill_guard
        # The kill file is read every tick (0), or at most this often in wall time: a backtest
        # ticks thousands of times a second, and one stat of the file costs more than a tick.
        self.kill_poll_s = kill_poll_s
        self._next_kill_poll = 0.0
        self.flatten_on_kill = config.arena.flatten_on_kill
        # Equity is checked (loss and drawdown limits) every equity_every_s; a backtest
        # journals a snapshot only every journal_equity_every_s (coarser: fewer documents).
        self._equity_every_ns = int(config.arena.equity_every_s * NS_PER_S)
        self.journal_every_s = journal_equity_every_s or config.arena.equity_every_s
        self._journal_every_ns = int(self.journal_every_s * NS_PER_S)
        self._next_journal_ns = 0
        self._summary_every_ns = int(config.arena.summary_every_s * NS_PER_S)
        self._next_equity_ns = 0
        self._next_summary_ns = 0
        self._next_progress_ns = 0
        self._flat_logged = False
        self._progress_mark: tuple[int, float] | None = None  # (market ns, wall s) last shown
        # Market time between progress log lines (None: a bar backtest shows a progress bar).
        self.progress_every_ns: int | None = 600 * NS_PER_S

    @property
    def next_equity_ns(self) -> int:
        """When :meth:`housekeeping` takes the next equity snapshot."""
        return self._next_equity_ns

    def start_timers(self, first_tick_ns: int) -> None:
        """The first tick of the run: the first equity snapshot is one interval later, and the
        kill switch is read now, before any decision (a switch engaged before the start must
        stop the first order too, whichever drive comes to housekeeping first)."""
        self._next_equity_ns = first_tick_ns + self._equity_every_ns
        self._next_journal_ns = first_tick_ns + self._journal_every_ns
        if self.kill_guard is not None:
            self._poll_kill(first_tick_ns)

    async def housekeeping(self, now_ns: int) -> None:
        """Once per live tick, after the decisions."""
        router = self.state.need_router()
        if self.kill_guard is not None and self._kill_due():
            self._poll_kill(now_ns)
        risk = self.risk
        # What there is to do, each condition written once: the early return is "none of it",
        # each part below runs on its own flag (follow-ups and orders in flight are read again
        # there: the flattening before may have made some). Most ticks nothing is halted,
        # killed, split or in flight (a backtest runs this 86,400 times a day per run).
        # forced: a halt or kill, so a book may have to flatten or withdraw its quote.
        forced = not (risk.killed is None and risk.global_halt is None and not risk.halted)
        progress_due = self.progress_every_ns is not None and now_ns >= self._next_progress_ns
        snapshot_due = now_ns >= self._next_equity_ns
        if not (forced or router.follow or router.ledger.in_flight or progress_due or snapshot_due):
            return
        if (
            risk.killed is not None
            and not self._flat_logged
            and all(b.qty == 0 for b in self.books.values())
            and not router.ledger.in_flight
        ):
            self._flat_logged = True
            logger.warning("kill switch: every book is flat, no order in flight")
        for name in list(router.quotes.resting) if forced else ():
            # A resting maker quote may fill long after it was placed: a halted or killed
            # strategy must not keep one working.
            if risk.killed is not None or must_flatten(
                risk, name, flatten_on_kill=self.flatten_on_kill
            ):
                await router.withdraw(name, "halted or kill switch")
        if self.state.last_price is not None:
            for name in self.books if forced else ():
                if self.books[name].qty != 0 and must_flatten(
                    self.risk, name, flatten_on_kill=self.flatten_on_kill
                ):
                    await router.flatten(
                        name,
                        price=self.state.last_price,
                        now_ns=now_ns,
                        last_trade_ns=self.state.last_trade_ns,
                    )
            # The rest of a target an exit could not reach alone: the entry of a flip (checked
            # on its own now the close is done) or the next slice of a large exit.
            for name, follow in router.follow_ups().items() if router.follow else ():
                if (
                    must_flatten(self.risk, name, flatten_on_kill=self.flatten_on_kill)
                    and follow.target != 0.0
                ):
                    router.set_follow(name, None, now_ns)
                    continue
                age = None
                if follow.uses_forecast:
                    forecast, _, age = (
                        self.pump.view(now_ns) if self.pump is not None else (None, None, None)
                    )
                    if forecast is None:  # the forecast behind the target is gone: stand aside
                        router.set_follow(name, None, now_ns)
                        continue
                cid = await router.rebalance(
                    name,
                    follow.target,
                    price=self.state.last_price,
                    now_ns=now_ns,
                    last_trade_ns=self.state.last_trade_ns,
                    uses_forecast=follow.uses_forecast,
                    forecast_age_s=age,
                    decision_id=follow.decision_id,
                    market=follow.market,
                )
                if cid is not None:
                    self.result.orders += 1
        if router.ledger.in_flight:
            await router.expire(now_ns)
        if progress_due:
            assert self.progress_every_ns is not None
            self._next_progress_ns = now_ns + self.progress_every_ns
            r = self.result
            logger.info(
                "progress: market time %s%s; trades=%d bars=%d orders=%d fills=%d",
                datetime.fromtimestamp(now_ns / NS_PER_S, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                self._progress_rate(now_ns),
                r.trades,
                r.bars,
                r.orders,
                sum(b.fills for b in self.books.values()),
                extra=PROGRESS,
            )
        if snapshot_due:
            self._next_equity_ns = now_ns + self._equity_every_ns
            self.snapshot(now_ns)

    def _poll_kill(self, now_ns: int) -> None:
        assert self.kill_guard is not None
        event = self.kill_guard.poll(self.risk.killed is not None)
        if event is None:
            return
        if event.type == "kill":
            self.risk.kill(event.reason, now_ns, by=event.by, verified=event.verified)
            logger.warning("kill switch engaged by %s: %s", event.by, self.risk.killed)
            self._flat_logged = False
        elif event.type == "kill_released":
            # Released: strategies trade again from their next bar.
            self.risk.unkill(now_ns, by=event.by, verified=event.verified, reason=event.reason)
            logger.warning("kill switch released by %s: trading resumes", event.by)
        else:
            self.risk.release_refused(event.reason, now_ns, by=event.by)

    def _kill_due(self) -> bool:
        if self.kill_poll_s <= 0:
            return True
        wall = time.monotonic()
        if wall < self._next_kill_poll:
            return False
        self._next_kill_poll = wall + self.kill_poll_s
        return True

    def _progress_rate(self, now_ns: int) -> str:
        """Market time per wall time since the last progress line: the replay's speed."""
        wall = time.monotonic()
        mark, self._progress_mark = self._progress_mark, (now_ns, wall)
        if mark is None or wall <= mark[1]:
            return ""
        return f" ({(now_ns - mark[0]) / NS_PER_S / (wall - mark[1]):,.0f}× real time)"

    def _snapshot_timers(self, now_ns: int, final: bool) -> tuple[bool, bool]:
        """(journaled, summaries) for a snapshot at ``now_ns``, the timers moved on."""
        journaled = final or now_ns >= self._next_journal_ns
        if journaled:
            self._next_journal_ns = now_ns + self._journal_every_ns
        # The summaries (read models) go with journaled snapshots: live, every snapshot is; a
        # backtest needs them only as often as its equity documents (the last one wins).
        summaries = final or (journaled and now_ns >= self._next_summary_ns)
        if summaries:
            self._next_summary_ns = now_ns + self._summary_every_ns
        return journaled, summaries

    def replayed(self, now_ns: int) -> None:
        """A tick a resumed run replays (at or before its checkpoint): the snapshot timers move
        as :meth:`housekeeping` moved them then, so the checks after the checkpoint come at the
        same instants as in the run that was never interrupted (the risk state is restored)."""
        if now_ns < self._next_equity_ns:
            return
        self._next_equity_ns = now_ns + self._equity_every_ns
        if self.state.last_price is not None and self.state.router is not None:
            self._snapshot_timers(now_ns, False)

    def snapshot(self, now_ns: int, *, final: bool = False) -> None:
        """Equity per strategy (journal), loss/drawdown checks, and the summary read models."""
        router = self.state.router
        if self.state.last_price is None or router is None:
            return
        journaled, summaries = self._snapshot_timers(now_ns, final)
        mark = Decimal(str(self.state.last_price))
        # A backtest between journaled snapshots checks the limits only (no documents).
        docs = {n: b.snapshot(mark, now_ns) for n, b in self.books.items()} if journaled else {}
        # The loss checks first, then their state (what a restart restores), then the equity
        # documents: a crash that kept a snapshot's equity kept the risk state it produced.
        total = 0.0
        for name, book in self.books.items():
            equity = docs[name]["equity"] if journaled else float(book.equity(mark))
            total += equity
            self.risk.on_equity(name, equity, now_ns)
            self.result.equity[name] = equity
        self.risk.on_total_equity(total, now_ns)
        self.risk.journal_state(now_ns)
        for name, doc in docs.items():
            book = self.books[name]
            self.record("equity", doc)
            if not summaries:
                continue
            kind = self.kinds[name]
            self.record.upsert_summary(
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
                    "orders": router.orders_sent.get(name, 0),
                    "round_trips": book.round_trips,
                    "wins": book.wins,
                    "win_rate": book.wins / book.round_trips if book.round_trips else None,
                    "vetoes": self.risk.vetoes.get(name, 0),
                    "halted": self.risk.halted.get(name),
                    "halted_at": self.risk.halted_at.get(name),
                    "exposure": doc["exposure"],
                    "last_decision": self.state.last_decision.get(name, ""),
                    "ts_ns": now_ns,
                },
            )
        if journaled:
            # A checkpoint (a restart resumes from the last snapshot): the buffer may go out.
            self.record.checkpoint()

    async def backpressure(self) -> None:
        # A backtest can outrun the database: wait for the journal's backlog rather than make
        # it overflow to its (fsync-per-event) spill file on the hot path.
        backlog = self.journal.backlog
        if backlog() < 4000:
            return
        while backlog() > 1000:
            await asyncio.sleep(0.005)

    def backpressure_now(self) -> None:
        """:meth:`backpressure` for the synchronous drive (no event loop to hand back to; a
        bulk journal blocks its producer by itself when its queue is full)."""
        backlog = self.journal.backlog
        if backlog() < 4000:
            return
        while backlog() > 1000:
            time.sleep(0.005)
