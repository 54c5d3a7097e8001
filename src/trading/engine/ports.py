"""What the engine needs from a journal, typed: a writer (events in, with the bulk path a
backtest declares) and a reader (a restart's and a run's own look-backs).

``journal.Journal`` is the implementation (checked below by the type checker); the alerts tap
passes every call through to it; tests may hand in a smaller fake that keeps what they look at.
A journal *declares* its bulk path (``bulk``) instead of the engine probing for methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

Op = dict[str, Any]  # a prepared write (journal/spill.py's Op)


class JournalFind(Protocol):
    """A journal's one query."""

    def find(
        self,
        kind: str,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]: ...


class JournalReader(JournalFind, Protocol):
    def runs(self, run_id: str | None = None) -> list[dict[str, Any]]: ...

    def checkpoint_ns(self, run_id: str) -> int: ...

    def sent_client_ids(self, run_id: str) -> set[str]: ...


class JournalWriter(Protocol):
    bulk: bool  # declares the bulk (backtest) path: prepare + write_prepared in large batches

    def record(self, kind: str, doc: Mapping[str, Any]) -> str: ...

    def set_prediction_outcome(
        self, event_id: str, realised_price: float, realised_ts_ns: int
    ) -> None: ...

    def upsert_summary(self, strategy: str, doc: Mapping[str, Any]) -> None: ...

    def flush(self, timeout_s: float = 5.0) -> bool: ...

    def backlog(self) -> int:
        """Events queued for the database and not yet taken by its writer (a backtest waits
        on this rather than outrun the database)."""
        ...


class BulkJournalWriter(JournalWriter, Protocol):
    """The bulk path (``bulk`` is True): events prepared with their ids and seqs at once,
    handed over in large batches."""

    def prepare(self, kind: str, doc: Mapping[str, Any]) -> Op: ...

    def prepare_outcome(self, event_id: str, realised_price: float, realised_ts_ns: int) -> Op: ...

    def prepare_summary(self, strategy: str, doc: Mapping[str, Any]) -> Op: ...

    def fold_outcome(self, op: Op, realised_price: float, realised_ts_ns: int) -> None: ...

    def write_prepared(self, ops: list[Op], through: int | None = None) -> None: ...

    def wait_durable(self, seq: int, timeout_s: float = 30.0) -> bool: ...

    @property
    def last_seq(self) -> int: ...


class EngineJournal(JournalWriter, JournalReader, Protocol):
    """What a worker is handed: it writes its events and reads its own run back."""


if TYPE_CHECKING:
    from cryptoarena.trading.journal.journal import Journal

    _journal: type[EngineJournal] = Journal
    _bulk: type[BulkJournalWriter] = Journal
