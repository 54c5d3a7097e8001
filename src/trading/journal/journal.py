"""The trading journal: every run, prediction, decision, order, fill, equity snapshot, risk and
model event, written to MongoDB (or litemongo, embedded) off the hot path.

Durability: when :meth:`Journal.record` returns, the event is only in memory (or, if the queue
was full, already fsync'd to the overflow file). When :meth:`Journal.flush` returns ``True``,
every event recorded before the call is durable against a process crash: committed to the
database or appended and fsync'd to the spill file, which the next open replays first.
:meth:`Journal.sync` waits further, until those events are in the database itself.
"""

from __future__ import annotations

import atexit
import logging
import re
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Self

from cryptoarena.clock import Clock, LiveClock
from cryptoarena.config import Settings
from cryptoarena.trading.journal import schema, store
from cryptoarena.trading.journal.sanitize import JournalDocumentError, clean_document
from cryptoarena.trading.journal.spill import Op, SpillLog, decode
from cryptoarena.trading.journal.writer import Writer, WriterConfig

logger = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
# Journals still open at interpreter exit are drained (the writer thread is a daemon).
_OPEN: weakref.WeakSet[Journal] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for journal in list(_OPEN):
        journal.close()


class JournalUnavailableError(ConnectionError):
    """A read could not reach the journal database (writes never raise this: they spill)."""


class JournalClosedError(RuntimeError):
    """The journal was closed (or opened read-only, for writes)."""


@dataclass(frozen=True)
class JournalConfig:
    writer: WriterConfig = field(default_factory=WriterConfig)
    store: store.StoreConfig = field(default_factory=store.StoreConfig)
    spill_dir: Path | None = None  # default: settings.mongo.spill_dir, else <embedded_dir>/spill
    open_timeout_s: float = 30.0  # waiting for a leftover spill to replay at open
    close_timeout_s: float = 10.0
    read_timeout_s: float = 30.0


class Journal:
    """Use :meth:`open`; ``with Journal.open(...) as journal:`` closes (drains) it."""

    def __init__(
        self,
        writer: Writer,
        *,
        run_id: str,
        clock: Clock,
        config: JournalConfig,
        readonly: bool = False,
    ):
        self.run_id = run_id
        self.readonly = readonly
        self._writer = writer
        self._clock = clock
        self._config = config
        self._session = time.time_ns()
        self._closed = False
        _OPEN.add(self)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        run_id: str,
        clock: Clock | None = None,
        config: JournalConfig | None = None,
        readonly: bool = False,
    ) -> Journal:
        """Connect (litemongo under ``settings.mongo.embedded_dir`` unless ``settings.mongo.uri``),
        take the single-writer lock, and replay any spill left by a crash before returning.

        ``readonly=True`` opens a reader beside the writing process (``arena report``, a
        dashboard in another process): no lock, no spill replay, no index creation, and every
        write raises :class:`JournalClosedError`."""
        if not _RUN_ID.match(run_id):
            raise ValueError(f"run_id must match {_RUN_ID.pattern}, got {run_id!r}")
        config = config or JournalConfig()
        mongo = settings.mongo
        spill_dir = config.spill_dir or mongo.spill_dir or mongo.embedded_dir / "spill"
        spill = SpillLog(Path(spill_dir), mongo.database)
        if not readonly:
            spill.lock()
        try:
            if not readonly:
                spill.recover()
            connect = partial(store.connect, mongo, config.store)
            writer = Writer(connect, mongo.database, spill, config.writer, readonly=readonly)
            writer.start()
        except BaseException:
            spill.unlock()
            raise
        if not writer.ready.wait(config.open_timeout_s):
            logger.warning(
                "journal: leftover spill still replaying after %.0f s", config.open_timeout_s
            )
        if writer.last_error:
            logger.warning("journal: opened without its database (%s); spilling", writer.last_error)
        return cls(
            writer, run_id=run_id, clock=clock or LiveClock(), config=config, readonly=readonly
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (never blocks on the database) -----------------------------------------------
    def record(self, kind: str, doc: Mapping[str, Any]) -> str:
        """Enqueue one event of ``kind`` (a collection in ``schema.KINDS``); returns its id."""
        if kind not in schema.KINDS:
            raise ValueError(f"unknown journal kind {kind!r}; expected one of {schema.KINDS}")
        clean = self._prepare(doc)
        for name in schema.REQUIRED_FIELDS.get(kind, ()):
            if clean.get(name) in (None, ""):
                raise JournalDocumentError(f"a {kind} event needs a {name!r} field")
        given = clean.get("_id")
        if given is not None and not isinstance(given, str):
            raise JournalDocumentError("an explicit _id must be a string")

        def build(seq: int) -> Op:
            eid = given or schema.event_id(self.run_id, self._session, seq)
            clean["_id"] = eid
            clean["seq"] = seq
            return {"s": self._session, "n": seq, "c": kind, "op": "ins", "id": eid, "d": clean}

        return str(self._writer.submit(build)["id"])

    def set_prediction_outcome(
        self, event_id: str, realised_price: float, realised_ts_ns: int
    ) -> None:
        """Fill in the realised price of a recorded prediction (applied after its insert)."""
        update = {"realised_price": float(realised_price), "realised_ts_ns": int(realised_ts_ns)}
        self._submit("predictions", "set", event_id, update)

    def upsert_summary(self, strategy: str, doc: Mapping[str, Any]) -> None:
        """Replace the read-model summary of ``strategy`` (collection ``summaries``)."""
        if not strategy:
            raise ValueError("strategy must be a non-empty string")
        clean = self._prepare(doc)
        clean.update(_id=strategy, strategy=strategy, updated_ns=self._clock.now_ns())
        self._submit(schema.SUMMARIES, "put", strategy, clean)

    def _prepare(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        self._check_writable()
        clean = clean_document(doc)
        if clean.setdefault("run_id", self.run_id) != self.run_id:
            raise JournalDocumentError(f"run_id {clean['run_id']!r} is not this journal's run")
        clean.setdefault("ts_ns", self._clock.now_ns())
        return clean

    def _check_writable(self) -> None:
        if self._closed:
            raise JournalClosedError("the journal is closed")
        if self.readonly:
            raise JournalClosedError("the journal was opened read-only")

    def _submit(self, coll: str, op: str, key: str, doc: dict[str, Any]) -> None:
        self._check_writable()
        session = self._session
        self._writer.submit(
            lambda seq: {"s": session, "n": seq, "c": coll, "op": op, "id": key, "d": doc}
        )

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything recorded so far is durable (database or fsync'd spill)."""
        return self._writer.wait_for("durable_seq", self._writer.seq, timeout_s)

    def sync(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything recorded so far is in the database (the spill replayed)."""
        return self._writer.wait_for("db_seq", self._writer.seq, timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Drain the queue and try to replay the spill; what cannot be written stays spilled."""
        if self._closed:
            return
        self._closed = True
        self._writer.stop(self._config.close_timeout_s if timeout_s is None else timeout_s)
        if not self.readonly:
            self._writer.spill.unlock()

    @property
    def healthy(self) -> bool:
        """True while the database takes writes directly (nothing waiting in the spill)."""
        return self._writer.healthy and not self._writer.spill.pending()

    @property
    def spill_path(self) -> Path:
        return self._writer.spill.spill_path

    # -- reading (for restart, tests and the dashboard) -----------------------------------
    def find(
        self,
        kind: str,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Documents of a collection; start filters with an indexed window (run_id, strategy
        + ts_ns): litemongo evaluates queries in Python."""
        if kind not in schema.COLLECTIONS:
            raise ValueError(f"unknown journal collection {kind!r}")
        query = dict(filter or {})
        proj = dict(projection) if projection is not None else None

        def run(db: Any) -> list[dict[str, Any]]:
            cursor = db[kind].find(query, proj)
            if sort:
                cursor = cursor.sort(sort)
            if limit:
                cursor = cursor.limit(limit)
            return list(cursor)

        return list(self._read(run))

    def count(self, kind: str, filter: Mapping[str, Any] | None = None) -> int:
        if kind not in schema.COLLECTIONS:
            raise ValueError(f"unknown journal collection {kind!r}")
        query = dict(filter or {})
        return int(self._read(lambda db: db[kind].count_documents(query)))

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {doc["strategy"]: doc for doc in self.find(schema.SUMMARIES)}

    def latest_equity(self, run_id: str | None = None) -> dict[str, dict[str, Any]]:
        """The newest equity snapshot per strategy, in ``run_id`` or across all runs."""
        filt = {"run_id": run_id} if run_id else {}
        docs = self.find(schema.EQUITY_LATEST, filt, sort=[("ts_ns", 1)])
        return {doc["strategy"]: doc for doc in docs}

    def last_books(self, run_id: str) -> dict[str, dict[str, Any]]:
        """For a restart: each strategy's last equity snapshot (its book state) in ``run_id``."""
        return self.latest_equity(run_id)

    def sent_client_ids(self, run_id: str) -> set[str]:
        """Every client order id journaled for ``run_id``, including any still in the spill."""
        ids = {
            doc["client_id"]
            for doc in self.find("orders", {"run_id": run_id}, projection={"client_id": 1})
            if "client_id" in doc
        }
        for op in self._spilled_ops():
            doc = op.get("d") or {}
            if op.get("c") == "orders" and doc.get("run_id") == run_id and "client_id" in doc:
                ids.add(doc["client_id"])
        return ids

    def _spilled_ops(self) -> list[Op]:
        spill = self._writer.spill
        ops: list[Op] = []
        for path in (spill.spill_path, spill.overflow_path):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            for line in data.splitlines(keepends=True):
                if line.endswith(b"\n"):
                    try:
                        ops.append(decode(line))
                    except ValueError:
                        continue
        return ops

    def _read(self, fn: Any) -> Any:
        if self._closed:
            raise JournalClosedError("the journal is closed")
        try:
            return self._writer.call(fn, self._config.read_timeout_s)
        except (ConnectionError, TimeoutError) as exc:
            raise JournalUnavailableError(str(exc)) from exc
