"""What the engine's parts share while a run goes, passed to each explicitly: the market as
last seen, the replay checkpoint, the router (it exists once start-up knows the instrument),
and the journal recorder that counts what it hands over."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from cryptoarena.trading.engine.result import WorkerResult
from cryptoarena.trading.exchange.touch import TapeTouch
from cryptoarena.trading.execution.router import OrderRouter
from cryptoarena.trading.risk.manager import RiskManager

if TYPE_CHECKING:
    from cryptoarena.trading.engine.ports import BulkJournalWriter, JournalWriter


@dataclass
class RunState:
    last_price: float | None = None
    last_trade_ns: int | None = None
    # Ticks up to here replay history (a resumed run, in-sample bars): strategies warm up only.
    checkpoint_ns: int = 0
    last_decision: dict[str, str] = field(default_factory=dict)
    router: OrderRouter | None = None
    # The touch estimated from the tape the strategies see: where maker quotes join.
    touch: TapeTouch = field(default_factory=TapeTouch)

    def need_router(self) -> OrderRouter:
        if self.router is None:
            raise RuntimeError("the engine has not started: no order router yet")
        return self.router


class Recorder:
    """Journal events through one door, counted by kind (the exactly-once checks use it).

    With a bulk journal (a backtest: ``Journal.open(..., bulk=True)``) it buffers: each event
    gets its id and seq at once (the same document as live), and the buffer goes to the
    journal as one large batch of plain inserts when it is full, at an equity checkpoint
    once it is large or half a second old (:meth:`checkpoint`), at the end and on a crash
    (:meth:`flush_buffer`). Prediction outcomes and summaries take
    the same door, so every write keeps its place in the recording order."""

    BUFFER = 20_000  # events held before they go to the journal in one batch
    # A checkpoint hands the buffer over when it holds this many events or this much wall
    # time passed: a backtest's checkpoints come every few ms, and a tiny batch each time
    # costs the writer thread (and the GIL) more than the events themselves.
    CHECKPOINT_EVENTS = 2_000
    CHECKPOINT_S = 0.5

    def __init__(self, journal: JournalWriter, result: WorkerResult) -> None:
        # A journal declares its bulk path; only then is it used as one.
        self.buffered = journal.bulk
        self.journal = cast("BulkJournalWriter", journal)
        self.result = result
        self._ops: list[Any] = []
        self._flushed_at = time.monotonic()
        self._predictions: dict[str, Any] = {}  # buffered prediction ops by event id
        self._folded = False
        self._written_seq = 0  # the last seq of the batch handed over before this one

    def __call__(self, kind: str, doc: dict[str, Any]) -> str:
        self.result.journaled[kind] += 1
        if not self.buffered:
            return str(self.journal.record(kind, doc))
        op = self.journal.prepare(kind, doc)
        if kind == "predictions":
            self._predictions[op["id"]] = op
        self._hold(op)
        return str(op["id"])

    def risk_event(self, doc: dict[str, Any]) -> None:
        self("risk_events", doc)

    def risk_state(self, doc: dict[str, Any]) -> None:
        self("risk_state", doc)

    def set_prediction_outcome(
        self, event_id: str, realised_price: float, realised_ts_ns: int
    ) -> None:
        if not self.buffered:
            self.journal.set_prediction_outcome(event_id, realised_price, realised_ts_ns)
            return
        pending = self._predictions.pop(event_id, None)
        if pending is not None:  # still buffered: written once, with its outcome
            self.journal.fold_outcome(pending, realised_price, realised_ts_ns)
            self._folded = True
        else:
            self._hold(self.journal.prepare_outcome(event_id, realised_price, realised_ts_ns))

    def upsert_summary(self, strategy: str, doc: dict[str, Any]) -> None:
        if self.buffered:
            self._hold(self.journal.prepare_summary(strategy, doc))
        else:
            self.journal.upsert_summary(strategy, doc)

    def _hold(self, op: Any) -> None:
        self._ops.append(op)
        if len(self._ops) >= self.BUFFER:
            self.flush_buffer()

    def checkpoint(self) -> None:
        """A restart point (an equity snapshot, the end of a batch): the buffer goes out if it
        is large or old."""
        if self._ops and (
            len(self._ops) >= self.CHECKPOINT_EVENTS
            or time.monotonic() - self._flushed_at >= self.CHECKPOINT_S
        ):
            self.flush_buffer()

    def flush_buffer(self) -> None:
        """Hand what is buffered to the journal (one batch); nothing to do when unbuffered."""
        if self._ops or self._folded:
            # Double buffering: the previous batch must be durable before this one goes. The
            # writer thread then gets the interpreter to itself while this thread waits;
            # otherwise every SQLite row it writes waits for the GIL behind the replay (a
            # convoy: a day's backtest left its journal seconds behind), and a hard kill
            # loses at most two batches.
            if self._written_seq:
                self.journal.wait_durable(self._written_seq)
            ops, self._ops = self._ops, []
            through = self.journal.last_seq if self._folded else None
            self._predictions.clear()
            self._folded = False
            self._flushed_at = time.monotonic()
            self.journal.write_prepared(ops, through)
            self._written_seq = self.journal.last_seq

    def flush(self, timeout_s: float) -> bool:
        """Everything recorded so far durable (see ``Journal.flush``)."""
        self.flush_buffer()
        return bool(self.journal.flush(timeout_s))


def must_flatten(risk: RiskManager, name: str, *, flatten_on_kill: bool) -> bool:
    """Halted (loss, drawdown, crash), globally halted, or killed with flatten_on_kill."""
    return (
        name in risk.halted
        or risk.global_halt is not None
        or (risk.killed is not None and flatten_on_kill)
    )
