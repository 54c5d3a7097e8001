"""The bar backtest's clock driver: recorded 1-minute klines through the engine's own parts.

The same strategies, decision step (:class:`Decider`), risk manager, books, order router,
journal and duties as every other run, on the paper venue fed bars instead of trades (a venue
declaring ``bar_fills``: :class:`~cryptoarena.trading.exchange.paper.PaperExchange`). Per 1 m bar:

1. If orders are working: the clock moves to the bar's **open**, ``on_bars`` fills the orders
   sent at the previous close at this open (the bar fill rule, docs/exchange.md), the fills and order
   updates go to the router's ledger; the rest of a target an exit could not reach alone (a
   flip's entry) is sent now and fills at the same open.
2. The clock moves to the bar's **close**; every strategy whose bar closes here decides; the
   decision step journals it (when its class changes) and routes it.
3. Daily-loss and drawdown checks mark every book at every close (vectorised between events,
   :meth:`RiskManager.equity_path`); a breach halts at that bar, as a per-bar check would.
4. Duties (kill switch, forced flattening, follow-ups, expiry, equity snapshots at their own
   interval) run on bars where any of them has work.

Most bars change nothing: decisions are computed for the whole span before the loop
(``signals.py``), so a bar whose decision class is unchanged, whose target needs no order
(the order sizing rule of ``orders.size_order``, pre-checked in float and confirmed exactly) and
on which nothing is due gets no work: with no order working or in flight, the next bar where
something can happen is found over the span at once and the quiet bars before it are jumped
over (:meth:`BarDrive._quiet_until`). Everything the engine does on the other bars goes through
the same code as a live run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pandas as pd
from cryptoarena.data.bars import resample_bars
from cryptoarena.data.feed import LIVE_FEED
from cryptoarena.data.records import NS_PER_S, Bar, Trade
from cryptoarena.trading.engine.decide import may_size_order, may_size_orders
from cryptoarena.trading.engine.result import WorkerResult
from cryptoarena.trading.engine.signals import Signals, compute_signals
from cryptoarena.trading.engine.state import must_flatten
from cryptoarena.trading.engine.sync import run_now
from cryptoarena.trading.engine.worker import Worker
from cryptoarena.trading.exchange.base import BarFillVenue, Exchange
from cryptoarena.trading.exchange.models import Fill, Order
from cryptoarena.trading.exchange.updates import UpdateStream
from cryptoarena.trading.execution.router import OrderRouter
from cryptoarena.trading.portfolio.ledger import Ledger
from cryptoarena.trading.risk.manager import EquityPath

logger = logging.getLogger(__name__)

MINUTE_NS = 60 * NS_PER_S
_NO_CLASS = -1
_FIRST_BLOCK = 64  # bars of loss checks computed ahead after a change of the books
_MAX_BLOCK = 16_384
_MIN_QUIET = 8  # bars: a shorter quiet span is walked bar by bar
KILL_POLL_BARS_S = 0.25  # wall seconds between reads of the kill file in a bar run


class PulledUpdates(UpdateStream[Order | Fill]):
    """The bar exchange's update stream, emptied by the driver itself between steps (the
    engine's async update consumer gets an iterator that only ends at close)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: deque[Order | Fill] = deque()
        self._closed = asyncio.Event()

    def publish(self, event: Order | Fill) -> None:
        self.pending.append(event)

    def subscribe(self) -> AsyncIterator[Order | Fill]:
        return self._until_closed()

    def close(self) -> None:
        self._closed.set()

    async def _until_closed(self) -> AsyncIterator[Order | Fill]:
        await self._closed.wait()
        return
        yield  # an async generator that yields nothing


class NoFeed:
    """A bar run has no trade feed: the driver reads the klines itself."""

    # Declares nothing: the worker keeps the live equity interval for a bar run.
    capabilities = LIVE_FEED

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.gaps: list[Any] = []

    def __aiter__(self) -> AsyncIterator[list[Trade]]:
        return self._empty()

    async def _empty(self) -> AsyncIterator[list[Trade]]:
        return
        yield

    async def close(self) -> None:
        return None


@dataclass
class _Lane:
    """One strategy's decisions laid on the 1 m bars (class -1: its bar does not close here)."""

    signals: Signals
    name: str
    book: Ledger
    keys: list[int]
    targets: list[float]
    index: list[int]  # 1 m bar → the strategy's own bar index (-1: none closes there)
    closes: np.ndarray  # bool per 1 m bar: the strategy's bar closes there
    target_arr: np.ndarray  # the targets again, for the order-size pre-check over a span
    changes: list[int]  # the bars whose class differs from the last one decided (sorted)
    last_key: int = _NO_CLASS
    fills_seen: int = -1
    cash: float = 0.0  # cash − fees, float: the pre-check of the sizing rule
    qty: float = 0.0
    blocked: bool = False  # halted (or killed with flatten_on_kill): no order from a target
    # While blocked its class changes are applied lazily (:meth:`BarDrive._catch_up`): the
    # bar through which last_key and its last reason are current.
    seen: int = -1
    crash_bar: int = -1  # the 1 m bar of its crash (class -2), or -1


class BarDrive:
    """Drives a built :class:`Worker` (composition root) over 1 m klines on a venue that
    declares ``bar_fills``."""

    def __init__(
        self,
        worker: Worker,
        exchange: Exchange,
        stream: PulledUpdates,
        bars: pd.DataFrame,
        *,
        progress: bool = True,
    ) -> None:
        self.w = worker
        if not exchange.capabilities.bar_fills:
            raise ValueError(f"{exchange.name}: a bar backtest needs a venue that fills from bars")
        self.venue = cast("BarFillVenue", exchange)
        self.symbol = worker.symbol
        self.stream = stream
        self.progress = progress
        self.n = len(bars)
        self.ts = bars["ts"].to_numpy(np.int64)
        self.cols = {c: bars[c].to_numpy() for c in bars.columns}
        self.close_arr = bars["close"].to_numpy(np.float64)
        self.close_ns = self.ts + MINUTE_NS
        self.lanes = self._lanes(bars)
        self.paths: list[tuple[str | None, EquityPath]] = []
        self.path_from = 0
        self.path_end = 0
        self.breach_at = -1
        self.release_at = -1
        self.block = _FIRST_BLOCK
        self.halting = False
        self.flatten_due = False
        # The sizing rule's limits, the router's own (read at the run's start, as the decider's).
        self.min_fraction = 0.0
        self.instrument_min_qty = 0.0
        self.skipped = 0  # quiet bars jumped over (nothing could happen on them)

    # -- set-up -----------------------------------------------------------------------------
    def _lanes(self, bars: pd.DataFrame) -> list[_Lane]:
        fee = self.w.config.arena.fee_rate
        lanes: list[_Lane] = []
        started = time.perf_counter()
        for runner in self.w.runners:
            own = bars if runner.bar_ns == MINUTE_NS else resample_bars(bars, runner.bar_ns)
            sig = compute_signals(runner, own, fee)
            # The 1 m bar at whose close each of the strategy's bars closes.
            at = np.searchsorted(self.ts, sig.ts + runner.bar_ns, side="left") - 1
            m = len(sig.ts) if sig.crash_at < 0 else sig.crash_at + 1
            keys = np.full(self.n, _NO_CLASS, dtype=np.int64)
            targets = np.full(self.n, np.nan)
            index = np.full(self.n, -1, dtype=np.int64)
            keys[at[:m]] = sig.key[:m]
            targets[at[:m]] = sig.target[:m]
            index[at[:m]] = np.arange(m)
            crash_bar = -1
            if sig.crash_at >= 0:
                crash_bar = int(at[sig.crash_at])
                keys[crash_bar] = -2  # the crash itself
            closing = np.flatnonzero(keys != _NO_CLASS)
            kept = keys[closing]
            # A bar decides when its class differs from the previous closing bar's (the first
            # closing bar always: the lane starts at _NO_CLASS).
            changed = np.ones(len(kept), dtype=bool)
            changed[1:] = kept[1:] != kept[:-1]
            lanes.append(
                _Lane(
                    sig,
                    runner.name,
                    self.w.books[runner.name],
                    keys.tolist(),
                    targets.tolist(),
                    index.tolist(),
                    keys != _NO_CLASS,
                    targets,
                    closing[changed].tolist(),
                    crash_bar=crash_bar,
                )
            )
        logger.info(
            "bar backtest: decisions of %d strategies over %d bars computed in %.2f s",
            len(lanes),
            self.n,
            time.perf_counter() - started,
        )
        return lanes

    def _bar(self, i: int) -> Bar:
        c = self.cols
        return Bar(
            int(c["ts"][i]), float(c["open"][i]), float(c["high"][i]), float(c["low"][i]),
            float(c["close"][i]), float(c["volume"][i]), float(c["vwap"][i]),
            int(c["trades"][i]), float(c["buy_volume"][i]), float(c["sell_volume"][i]),
        )  # fmt: skip

    @property
    def router(self) -> OrderRouter:
        return self.w.state.need_router()

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> None:
        w = self.w
        router = self.router
        self.min_fraction = float(router.min_trade_fraction)
        self.instrument_min_qty = float(router.instrument.min_qty)
        w.duties.progress_every_ns = None  # the progress bar shows it instead
        # The kill file read at most every 0.25 s of wall time, as a live worker polls it
        # (a bar run's duties come thousands of times a second).
        w.duties.kill_poll_s = KILL_POLL_BARS_S
        if self.n == 0:
            return
        w.duties.start_timers(int(self.close_ns[0]))
        working = self.venue.working
        lanes = self.lanes
        closes = self.close_arr.tolist()
        close_ns = self.close_ns.tolist()
        shown = _Progress(self.n, self.progress)
        ledger_in_flight = router.ledger.in_flight
        follow = router.follow
        n = self.n
        i = 0
        try:
            while i < n:
                if not (working or ledger_in_flight or follow or self.flatten_due):
                    quiet_to = self._quiet_until(i, close_ns)
                    if quiet_to > i:  # nothing can happen on these bars: no per-bar work
                        self.skipped += quiet_to - i
                        if (quiet_to - 1) >> 12 != (i - 1) >> 12:
                            shown.update(quiet_to)
                        i = quiet_to
                        continue
                changed = False
                if working:
                    self._open_phase(i)
                    changed = True
                c = closes[i]
                now = close_ns[i]
                if i == self.release_at:  # a new UTC day ends a daily halt: decide free of it
                    self._limits_at(i, c, now)
                for lane in lanes:
                    k = lane.keys[i]
                    if k == _NO_CLASS or (lane.blocked and k != -2):
                        continue  # a blocked lane's changes: applied when read (_catch_up)
                    lane.seen = i
                    if k != lane.last_key or (
                        not lane.blocked and self._wants(lane, lane.targets[i], c)
                    ):
                        self._decide(lane, i, k, c, now)
                if changed:
                    self._refresh_halting()  # a halted book may be flat now
                if changed or i >= self.path_end:
                    self._new_paths(i)
                if i == self.breach_at or i == self.release_at:
                    self._limits_at(i, c, now)
                # A decision alone needs no duty: an order it sent is in flight, a crash or a
                # breach halts (flatten_due then).
                if ledger_in_flight or follow or now >= w.duties.next_equity_ns or self.flatten_due:
                    self._housekeeping(i, c, now)
                if i & 4095 == 0:
                    shown.update(i)
                i += 1
            # The run ends at the last bar's close, not at its last event: the final snapshot
            # (the engine's stop) marks the books there (issue #20 item 8).
            self._commit(self.n - 1)
            self._catch_up(self.n - 1)
            self._at_close(closes[-1], close_ns[-1])
            shown.update(self.n)
        finally:
            shown.close()
            w.result.bars = self.n
            w.result.decisions = sum(sum(1 for k in lane.keys if k != _NO_CLASS) for lane in lanes)

    def _open_phase(self, i: int) -> None:
        """Orders sent at the previous close fill at this open (and a flip's entry after)."""
        w, router = self.w, self.router
        ts = int(self.ts[i])
        w.clock.advance_to(ts)  # type: ignore[attr-defined]
        bar = self._bar(i)
        for fill in self.venue.on_bars([bar], self.symbol):
            router.ledger.on_fill(fill)
        self._drain()
        if router.follow_ups():
            self._catch_up(i - 1)  # the duties' snapshot reads the last decisions
            state = w.state
            state.last_price = bar.open
            state.last_trade_ns = ts
            router.band_ref = bar.open
            run_now(w.duties.housekeeping(ts))
            self._drain()
            # The duties may have engaged or released the kill switch: the lanes the loop
            # passes by (blocked) must be the books that must flatten now.
            self._refresh_halting()
            if self.venue.working:
                for fill in self.venue.on_bars([bar], self.symbol):
                    router.ledger.on_fill(fill)
                self._drain()

    def _at_close(self, c: float, now: int) -> None:
        w = self.w
        w.clock.advance_to(now)  # type: ignore[attr-defined]
        w.state.last_price = c
        w.state.last_trade_ns = now
        self.router.band_ref = c
        self.venue.mark(self.symbol, Decimal(str(c)))  # what an order sent now is margined at

    def _decide(self, lane: _Lane, i: int, k: int, c: float, now: int) -> None:
        self._at_close(c, now)
        w = self.w
        if k == -2:
            assert lane.signals.crash is not None
            run_now(w.decider.decided(lane.signals.runner, lane.signals.crash, now))
            self._refresh_halting()
        else:
            decision = lane.signals.decision(lane.index[i])
            w.state.last_decision[lane.name] = decision.reason
            run_now(w.decider.decided(lane.signals.runner, decision, now))
        lane.last_key = k
        self._drain()

    def _catch_up(self, upto: int) -> None:
        """A blocked lane (its book must flatten) routes and journals no decision (Decider), so
        the loop passes it by; what its decisions leave behind, its class and last reason (read
        by the snapshots), is set here from its last class change up to bar ``upto``, as the
        bar-by-bar loop would have left it."""
        for lane in self.lanes:
            if not lane.blocked or upto <= lane.seen:
                continue
            k = bisect_right(lane.changes, upto) - 1
            if k >= 0 and lane.changes[k] > lane.seen:
                j = lane.changes[k]
                lane.last_key = lane.keys[j]
                self.w.state.last_decision[lane.name] = lane.signals.reason_at(lane.index[j])
            lane.seen = upto

    def _quiet_until(self, i: int, close_ns: list[int]) -> int:
        """The first bar from ``i`` on where something can happen, with no order working, in
        flight or following up and no book to flatten: a decision class changes, the order-size
        pre-check (:meth:`_wants`, the same float rule over the span) finds an order, the loss
        checks' block ends or breaches, a daily halt ends, or an equity snapshot is due. The
        bars before it are exactly those on which the per-bar loop would do nothing."""
        end = self.path_end
        if i >= end:
            return i
        for at in (self.breach_at, self.release_at):
            if at >= i:
                end = min(end, at)
        end = bisect_left(close_ns, self.w.duties.next_equity_ns, i, end)
        for lane in self.lanes:
            if lane.blocked:
                if lane.crash_bar >= i:
                    end = min(end, lane.crash_bar)
                continue
            k = bisect_left(lane.changes, i)
            if k < len(lane.changes):
                end = min(end, lane.changes[k])
        if end - i < _MIN_QUIET:  # the bar-by-bar loop is cheaper than the span's arrays
            return i
        for lane in self.lanes:
            if not lane.blocked:
                end = i + self._first_want(lane, i, end)
                if end == i:
                    break
        return end

    def _first_want(self, lane: _Lane, i: int, end: int) -> int:
        """:meth:`_wants` at every closing bar of ``i..end-1`` at once (the same float
        operations, element by element): the offset of the first bar where it is True, else
        ``end - i``."""
        self._book_floats(lane)
        target = lane.target_arr[i:end]
        wants = (
            lane.closes[i:end]
            & (target == target)
            & may_size_orders(
                lane.cash,
                lane.qty,
                target,
                self.close_arr[i:end],
                self.min_fraction,
                self.instrument_min_qty,
            )
        )
        first = int(wants.argmax())
        return first if wants[first] else end - i

    def _wants(self, lane: _Lane, target: float, price: float) -> bool:
        """Might :func:`size_order` give an order at ``price``? The decision step's own float
        pre-check (:func:`may_size_order`); NaN: the strategy decides nothing at this bar."""
        if target != target:
            return False
        self._book_floats(lane)
        return may_size_order(
            lane.cash, lane.qty, target, price, self.min_fraction, self.instrument_min_qty
        )

    @staticmethod
    def _book_floats(lane: _Lane) -> None:
        """The book's cash (less fees) and size as floats, read again after a fill."""
        book = lane.book
        if book.fills != lane.fills_seen:
            lane.fills_seen = book.fills
            lane.cash = float(book.cash - book.fees)
            lane.qty = float(book.qty)

    def _drain(self) -> None:
        pending = self.stream.pending
        ledger = self.router.ledger
        while pending:
            ledger.on_update(pending.popleft())

    # -- loss checks at every close ---------------------------------------------------------
    def _commit(self, i: int) -> None:
        if self.path_from <= i < self.path_end:
            for _, path in self.paths:
                path.commit(i - self.path_from)

    def _new_paths(self, i: int) -> None:
        """Mark every book at the closes from ``i`` on (positions fixed until the next fill)."""
        if i >= self.path_end:
            self.block = min(self.block * 2, _MAX_BLOCK)  # nothing changed: look further
        else:
            self.block = _FIRST_BLOCK
        self._commit(i - 1)
        end = min(self.n, i + self.block)
        ts = self.close_ns[i:end]
        close = self.close_arr[i:end]
        risk = self.w.risk
        paths: list[tuple[str | None, EquityPath]] = []
        halted = risk.halted
        total: np.ndarray | None = None
        for name, book in self.w.books.items():
            equity = float(book.cash - book.fees) + float(book.qty) * close
            # The sum in book order from 0.0, as a zero-filled total would add them.
            total = equity + 0.0 if total is None else total + equity
            if name not in halted:
                paths.append((name, risk.equity_path(name, ts, equity)))
        if total is None:
            total = np.zeros(end - i)
        if risk.global_halt is None:
            paths.append((None, risk.equity_path(None, ts, total)))
        self.paths, self.path_from, self.path_end = paths, i, end
        breach = min((p.breach for _, p in paths), default=end - i)
        self.breach_at = i + breach if breach < end - i else -1
        # A daily-loss halt ends at the next UTC day's first close (the exact check there, as
        # a snapshot makes it, releases it).
        release_ns = risk.next_daily_release_ns()
        self.release_at = (
            max(i, int(np.searchsorted(self.close_ns, release_ns)))
            if release_ns is not None
            else -1
        )

    def _limits_at(self, i: int, c: float, now: int) -> None:
        """A mark breaks a loss limit here, or a new UTC day ends a daily-loss halt: the exact
        check (as a snapshot makes it) halts or releases."""
        self._commit(i - 1)
        self._at_close(c, now)
        mark = Decimal(str(c))
        risk = self.w.risk
        total = 0.0
        for name, book in self.w.books.items():
            equity = float(book.equity(mark))
            total += equity
            risk.on_equity(name, equity, now)
        risk.on_total_equity(total, now)
        # Through the bar before: a released lane decides on this bar's class in the loop.
        self._catch_up(i - 1)
        self._refresh_halting()
        self.path_end = i + 1  # recompute from the next bar on the new state
        self.block = _FIRST_BLOCK // 2
        self.breach_at = self.release_at = -1

    def _refresh_halting(self) -> None:
        risk = self.w.risk
        self.halting = (
            bool(risk.halted)
            or risk.global_halt is not None
            or (risk.killed is not None and self.w.config.arena.flatten_on_kill)
        )
        flatten_on_kill = self.w.config.arena.flatten_on_kill
        for lane in self.lanes:  # its decisions are journaled, not routed
            lane.blocked = must_flatten(risk, lane.name, flatten_on_kill=flatten_on_kill)
        # Housekeeping flattens halted books: due while one of them is not flat.
        self.flatten_due = self.halting and any(b.qty != 0 for b in self.w.books.values())

    def _housekeeping(self, i: int, c: float, now: int) -> None:
        self._commit(i)
        self._at_close(c, now)
        self._catch_up(i)
        w = self.w
        for lane in self.lanes:
            if lane.last_key != _NO_CLASS and lane.name not in w.state.last_decision:
                w.state.last_decision[lane.name] = lane.signals.reason_at(max(lane.index[i], 0))
        halts = (len(w.risk.halted), w.risk.global_halt, w.risk.killed)
        run_now(w.duties.housekeeping(now))
        self._drain()
        if (len(w.risk.halted), w.risk.global_halt, w.risk.killed) != halts:
            self.path_end = i + 1
        self._refresh_halting()

    async def finish(self) -> None:
        """Before the engine's stop: cancel what still works, its updates booked."""
        router = self.w.state.router
        if router is None:
            return
        await router.cancel_all()
        self._drain()


class _Progress:
    """A rich progress bar with bars/s for long runs (nothing when ``enabled`` is False)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled:
            return
        from cryptoarena.console import make_console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._started = time.perf_counter()
        self._bar = Progress(
            TextColumn("bars"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=make_console(stderr=True),
            transient=False,
        )
        self._task = self._bar.add_task("bars", total=total, rate="")
        self._bar.start()

    def update(self, done: int) -> None:
        if self._bar is None:
            return
        elapsed = time.perf_counter() - self._started
        rate = f"{done / elapsed:,.0f} bars/s" if elapsed > 0 else ""
        self._bar.update(self._task, completed=done, rate=rate)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


async def drive(
    worker: Worker,
    exchange: Exchange,
    stream: PulledUpdates,
    bars: pd.DataFrame,
    *,
    progress: bool = True,
) -> WorkerResult:
    """Start the engine, drive it over ``bars``, stop it (the run journaled like any other)."""
    updates = await worker.lifecycle.start()
    drive = None
    try:
        drive = BarDrive(worker, exchange, stream, bars, progress=progress)
        started = time.perf_counter()
        drive.run()
        elapsed = time.perf_counter() - started
        logger.info(
            "bar backtest: %d bars in %.2f s (%s bars/s), %d orders, %d quiet bars skipped",
            drive.n,
            elapsed,
            f"{drive.n / elapsed:,.0f}" if elapsed > 0 else "-",
            worker.result.orders,
            drive.skipped,
        )
        await drive.finish()
        worker.result.stopped_by = "klines ended"
    except BaseException as exc:
        result = worker.result
        result.stopped_by = f"crashed: {type(exc).__name__}: {exc}"
        result.ended_by, result.complete = "crash", False
        result.error = f"{type(exc).__name__}: {exc}"
        logger.error("bar backtest crashed: %s", result.error)
        raise
    finally:
        await worker.lifecycle.stop(updates)
    return worker.result
