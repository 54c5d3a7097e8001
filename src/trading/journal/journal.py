"""The trading journal: every run, prediction, decision, order, fill, equity snapshot, risk and
model event, written to MongoDB (or the embedded SQLite store) off the hot path.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Self

from cryptoarena.clock import Clock, LiveClock
from cryptoarena.config import Settings
from cryptoarena.trading.journal import docstore, schema, store
from cryptoarena.trading.journal.sanitize import JournalDocumentError, clean_document
from cryptoarena.trading.journal.spill import Op, SpillLog, decode
from cryptoarena.trading.journal.writer import Reader, Writer, WriterConfig

logger = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
# Journals still open at interpreter exit are drained (the writer thread is a daemon).
_OPEN: weakref.WeakSet[Journal] = weakref.WeakSet()
_SCALARS = frozenset({str, int, float, type(None)})
BULK_BATCH = 5_000  # writes per transaction on the bulk (backtest) path
BULK_QUEUE = 1_024  # queued records or record_many chunks before a bulk producer waits
# Event kinds whose newest ts_ns bounds a run's restart checkpoint.
CHECKPOINT_KINDS = (
    "equity",
    "decisions",
    "predictions",
    "orders",
    "fills",
)  # writes per transaction on the bulk (backtest) path


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
        writer: Writer | Reader,
        *,
        run_id: str,
        clock: Clock,
        config: JournalConfig,
        readonly: bool = False,
        bulk: bool = False,
    ):
        self.run_id = run_id
        self.readonly = readonly
        self.bulk = bulk
        self._op = "new" if bulk else "ins"
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
        bulk: bool = False,
    ) -> Journal:
        """Connect (the embedded store under ``settings.mongo.embedded_dir`` unless
        ``settings.mongo.uri``), take the single-writer lock, and replay this store's leftover
        spill before returning.

        ``readonly=True`` opens a reader beside the writing process (``arena report``, a
        dashboard or a flow in another process): the embedded file is opened read-only, and
        there is no lock, no writer thread, no spill replay, no index creation; every write
        raises :class:`JournalClosedError`.

        ``bulk=True`` (backtests) records events as plain inserts in large batches instead of
        per-event upserts: the same documents, still exactly once (a replayed insert whose
        ``_id`` is already there counts as written)."""
        if not _RUN_ID.match(run_id):
            raise ValueError(f"run_id must match {_RUN_ID.pattern}, got {run_id!r}")
        config = config or JournalConfig()
        mongo = settings.mongo
        spill_dir = Path(config.spill_dir or mongo.spill_dir or mongo.embedded_dir / "spill")
        spill = SpillLog(
            spill_dir, store.spill_name(mongo), owner=store.identity(mongo), create=not readonly
        )
        connect = partial(store.connect, mongo, config.store, readonly=readonly)
        if readonly:
            if mongo.uri is None and (mongo.embedded_dir / mongo.database).is_dir():
                logger.warning(
                    "journal: %s holds a litemongo journal not copied yet; the next writer "
                    "(arena trade or backtest) copies it",
                    mongo.embedded_dir / mongo.database,
                )
            reader = Reader(connect, mongo.database, spill)
            return cls(reader, run_id=run_id, clock=clock or LiveClock(), config=config,
                       readonly=True)  # fmt: skip
        spill.lock()
        try:
            spill.recover()
            spill.warn_foreign(mongo.database)
            store.migrate_litemongo(mongo)
            wcfg = config.writer
            if bulk:
                wcfg = replace(
                    wcfg,
                    batch_size=max(wcfg.batch_size, BULK_BATCH),
                    queue_size=BULK_QUEUE,
                    block_s=max(wcfg.block_s, 30.0),
                )
            writer = Writer(connect, mongo.database, spill, wcfg)
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
        return cls(writer, run_id=run_id, clock=clock or LiveClock(), config=config, bulk=bulk)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (never blocks on the database) -----------------------------------------------
    def record(self, kind: str, doc: Mapping[str, Any]) -> str:
        """Enqueue one event of ``kind`` (a collection in ``schema.KINDS``); returns its id."""
        if kind not in schema.KINDS:
            raise ValueError(f"unknown journal kind {kind!r}; expected one of {schema.KINDS}")
        clean = self._event(kind, doc)
        given = clean.get("_id")
        op, run_id, session = self._op, self.run_id, self._session

        def build(seq: int) -> Op:
            eid = given or f"{run_id}:{session:016x}:{seq:010d}"  # schema.event_id
            clean["_id"] = eid  # BSON puts _id first, as MongoDB stores it
            clean["seq"] = seq
            return {"s": session, "n": seq, "c": kind, "op": op, "id": eid, "d": clean}

        return str(self._writer.submit(build)["id"])

    def record_many(self, kind: str, docs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Enqueue many events of one ``kind`` at once (a backtest's batch): the same documents
        and ids as that many :meth:`record` calls, for one lock and one queue slot. Nothing is
        enqueued if any document is refused. Returns their ids."""
        if kind not in schema.KINDS:
            raise ValueError(f"unknown journal kind {kind!r}; expected one of {schema.KINDS}")
        cleaned = [self._event(kind, doc) for doc in docs]
        if not cleaned:
            return []
        op, run_id, session = self._op, self.run_id, self._session

        def build(first: int) -> list[Op]:
            ops = []
            for seq, clean in enumerate(cleaned, first):
                eid = clean.get("_id") or f"{run_id}:{session:016x}:{seq:010d}"
                clean["_id"] = eid
                clean["seq"] = seq
                ops.append({"s": session, "n": seq, "c": kind, "op": op, "id": eid, "d": clean})
            return ops

        return [str(o["id"]) for o in self._writer.submit_many(build, len(cleaned))]

    # -- the bulk path's buffering producer (a backtest's Recorder) ---------------------------
    def prepare(self, kind: str, doc: Mapping[str, Any]) -> Op:
        """:meth:`record` in two halves: the event checked, its seq and id assigned now (the id
        is ``op["id"]``), nothing enqueued until :meth:`write_prepared`. The same document as
        :meth:`record`. Prepared ops must all be written, in order, before a :meth:`flush`."""
        if kind not in schema.KINDS:
            raise ValueError(f"unknown journal kind {kind!r}; expected one of {schema.KINDS}")
        clean = self._event(kind, doc)
        seq = self._writer.reserve(1)
        eid = clean.get("_id") or f"{self.run_id}:{self._session:016x}:{seq:010d}"
        clean["_id"] = eid
        clean["seq"] = seq
        return {"s": self._session, "n": seq, "c": kind, "op": self._op, "id": eid, "d": clean}

    def prepare_outcome(self, event_id: str, realised_price: float, realised_ts_ns: int) -> Op:
        """:meth:`set_prediction_outcome`, prepared (see :meth:`prepare`)."""
        self._check_writable()
        update = {"realised_price": float(realised_price), "realised_ts_ns": int(realised_ts_ns)}
        return self._op_now("predictions", "set", event_id, update)

    def prepare_summary(self, strategy: str, doc: Mapping[str, Any]) -> Op:
        """:meth:`upsert_summary`, prepared (see :meth:`prepare`)."""
        if not strategy:
            raise ValueError("strategy must be a non-empty string")
        clean = self._prepare(doc)
        clean.update(_id=strategy, strategy=strategy, updated_ns=self._clock.now_ns())
        return self._op_now(schema.SUMMARIES, "put", strategy, clean)

    def fold_outcome(self, op: Op, realised_price: float, realised_ts_ns: int) -> None:
        """:meth:`set_prediction_outcome` on a prediction prepared but not written yet: the
        fields go into its document (the same document the update would leave), and the
        update's seq is used up all the same (the events after it keep their seqs and ids);
        pass the last seq to :meth:`write_prepared` as ``through``."""
        op["d"]["realised_price"] = float(realised_price)
        op["d"]["realised_ts_ns"] = int(realised_ts_ns)
        self._writer.reserve(1)

    def wait_durable(self, seq: int, timeout_s: float = 30.0) -> bool:
        """Wait until everything up to ``seq`` is durable (a producer pacing itself on the
        writer: its thread then has the interpreter to itself)."""
        return self._writer.wait_for("durable_seq", seq, timeout_s)

    def backlog(self) -> int:
        """Events queued for the database and not yet taken by its writer thread: a backtest
        waits on this rather than outrun the database (engine/duties.py)."""
        return self._writer.backlog()

    @property
    def last_seq(self) -> int:
        """The last seq assigned (recorded, prepared or used up)."""
        return int(self._writer.seq)

    def write_prepared(self, ops: list[Op], through: int | None = None) -> None:
        """Enqueue prepared ops (in the order prepared) as one large batch; ``through``: the
        last seq they account for, when it was used up by a fold (see :meth:`fold_outcome`)."""
        self._check_writable()
        if through is not None and (not ops or through > ops[-1]["n"]):
            # Marks the used-up seqs written, so a flush does not wait for them.
            ops = [
                *ops,
                {"s": self._session, "n": through, "c": "", "op": "nop", "id": "", "d": {}},
            ]
        self._writer.enqueue(ops)

    def _op_now(self, coll: str, op: str, key: str, doc: dict[str, Any]) -> Op:
        seq = self._writer.reserve(1)
        return {"s": self._session, "n": seq, "c": coll, "op": op, "id": key, "d": doc}

    def _event(self, kind: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        clean = self._prepare(doc)
        for name in schema.REQUIRED_FIELDS.get(kind, ()):
            if clean.get(name) in (None, ""):
                raise JournalDocumentError(f"a {kind} event needs a {name!r} field")
        given = clean.get("_id")
        if given is not None and not isinstance(given, str):
            raise JournalDocumentError("an explicit _id must be a string")
        return clean

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
        if "ts_ns" not in clean:
            clean["ts_ns"] = self._clock.now_ns()
        # Indexed fields: scalars in both stores (the usual case told at once, in C).
        if _SCALARS.issuperset(map(type, map(clean.get, docstore.INDEXABLE))):
            return clean
        for name in docstore.INDEXABLE:
            value = clean.get(name)
            if type(value) not in _SCALARS and (
                isinstance(value, bool) or not isinstance(value, str | int | float)
            ):
                raise JournalDocumentError(f"{name!r} must be a string or a number")
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

    @property
    def rejects_path(self) -> Path:
        """Writes the database refused for good (e.g. a duplicate client order id)."""
        return self._writer.spill.rejects_path

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
        + ts_ns): the embedded store checks other fields in Python."""
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

    def delete(self, kind: str, filter: Mapping[str, Any]) -> int:
        """Delete documents (journal compaction only: events are otherwise never removed);
        through the store's own ``delete_many``, on the embedded store and on MongoDB alike."""
        if kind not in schema.COLLECTIONS:
            raise ValueError(f"unknown journal collection {kind!r}")
        self._check_writable()
        query = dict(filter)
        return int(self._read(lambda db: db[kind].delete_many(query).deleted_count))

    def storage_bytes(self) -> int:
        """The journal's size on disk (``dbstats``' storageSize, on either store)."""
        return int(self._read(lambda db: db.command("dbstats")["storageSize"]))

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {doc["strategy"]: doc for doc in self.find(schema.SUMMARIES)}

    def latest_equity(self, run_id: str | None = None) -> dict[str, dict[str, Any]]:
        """The newest equity snapshot per strategy, in ``run_id`` or across all runs."""
        filt = {"run_id": run_id} if run_id else {}
        docs = self.find(schema.EQUITY_LATEST, filt, sort=[("ts_ns", 1)])
        return {doc["strategy"]: doc for doc in docs}

    def checkpoint_ns(self, run_id: str) -> int:
        """For a restart: the newest event time journaled for ``run_id`` (0 if none), read as
        one indexed document per kind (``run_id + ts_ns``, newest first): its cost does not
        grow with the journal's size."""
        newest = 0
        for kind in CHECKPOINT_KINDS:
            docs = self.find(
                kind, {"run_id": run_id}, sort=[("ts_ns", -1)], limit=1, projection={"ts_ns": 1}
            )
            if docs:
                newest = max(newest, int(docs[0]["ts_ns"]))
        return newest

    def equity_window(
        self,
        run_id: str,
        strategy: str | None = None,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        per_minute: bool = False,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Equity snapshots of ``run_id`` (one strategy, or all) with ``start_ns <= ts_ns <
        end_ns``, oldest first (ties in recording order), fetched through the
        ``run_id + strategy + ts_ns`` index. ``per_minute=True`` reads the ``equity_minute``
        read model instead: the last snapshot of each minute (a day is 1,440 documents per
        strategy, whatever the snapshot interval)."""
        filt: dict[str, Any] = {"run_id": run_id}
        if strategy is not None:
            filt["strategy"] = strategy
        window: dict[str, int] = {}
        if start_ns is not None:
            window["$gte"] = int(start_ns)
        if end_ns is not None:
            window["$lt"] = int(end_ns)
        if window:
            filt["ts_ns"] = window
        kind = schema.EQUITY_MINUTE if per_minute else "equity"
        sort = [("ts_ns", 1)] if per_minute else [("ts_ns", 1), ("seq", 1)]
        return self.find(kind, filt, sort=sort, projection=projection)

    def equity_curves(
        self, run_id: str, *, per_minute: bool = False, fields: tuple[str, ...] = ()
    ) -> dict[str, list[dict[str, Any]]]:
        """Every strategy's equity curve in ``run_id``: ``{strategy: [snapshot, ...]}``, oldest
        first, one indexed window per strategy (the strategies come from ``equity_latest``).
        ``fields`` limits each snapshot to those fields (plus ``ts_ns``) for speed."""
        projection = dict.fromkeys(("ts_ns", "strategy", *fields), 1) if fields else None
        return {
            name: self.equity_window(run_id, name, per_minute=per_minute, projection=projection)
            for name in sorted(self.latest_equity(run_id))
        }

    def runs(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The ``runs`` events (started, stopped, ...) of one run or of all, oldest first."""
        filt = {"run_id": run_id} if run_id else {}
        return self.find("runs", filt, sort=[("ts_ns", 1), ("seq", 1)])

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
        for path in (spill.spill_path, spill.merging_path, spill.overflow_path):
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
