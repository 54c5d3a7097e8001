"""A backtest's front to the journal: events handed over in large batches.

:meth:`Journal.record` hands each event to the writer thread on its own (a lock and a queue
slot per event). A bar backtest records tens of thousands of events in seconds, so
:class:`BatchedJournal` keeps them and hands them over with :meth:`Journal.record_many`, a
batch per kind, every ``batch`` events and before anything that reads or waits for the journal.
The documents are the ones :meth:`Journal.record` would write: the ``_id`` (the same
``run:session:seq`` form, numbered here) and ``ts_ns`` are fixed when the event is recorded, so
callers get the id at once, and events of one kind keep their order (their ``seq``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cryptoarena.clock import Clock
from cryptoarena.trading.journal import schema
from cryptoarena.trading.journal.journal import Journal

DEFAULT_BATCH = 8_192


class BatchedJournal:
    def __init__(self, journal: Journal, clock: Clock, batch: int = DEFAULT_BATCH) -> None:
        self.journal = journal
        self.run_id = journal.run_id
        self._clock = clock
        self._batch = batch
        self._session = time.time_ns()
        self._n = 0
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._count = 0

    def record(self, kind: str, doc: Mapping[str, Any]) -> str:
        if kind not in schema.KINDS:
            raise ValueError(f"unknown journal kind {kind!r}; expected one of {schema.KINDS}")
        clean = dict(doc)
        clean.setdefault("ts_ns", self._clock.now_ns())
        event_id = clean.get("_id")
        if event_id is None:
            self._n += 1
            event_id = clean["_id"] = schema.event_id(self.run_id, self._session, self._n)
        self._pending.setdefault(kind, []).append(clean)
        self._count += 1
        if self._count >= self._batch:
            self.push()
        return str(event_id)

    def push(self) -> None:
        """Hand everything kept so far to the journal (one ``record_many`` per kind)."""
        pending, self._pending, self._count = self._pending, {}, 0
        for kind, docs in pending.items():
            self.journal.record_many(kind, docs)

    def upsert_summary(self, strategy: str, doc: Mapping[str, Any]) -> None:
        self.journal.upsert_summary(strategy, doc)  # a read model: no order with the events

    def flush(self, timeout_s: float = 5.0) -> bool:
        self.push()
        return self.journal.flush(timeout_s)

    def sync(self, timeout_s: float = 30.0) -> bool:
        self.push()
        return self.journal.sync(timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        self.push()
        self.journal.close(timeout_s)

    def __getattr__(self, name: str) -> Any:
        # Reads (find, count, runs, ...) and the rest: everything recorded is handed over first.
        self.push()
        return getattr(self.journal, name)
