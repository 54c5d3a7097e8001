"""The embedded journal store: the subset of the pymongo API the journal uses, on one SQLite file.

Why not litemongo (measured in docs/benchmarks.md): it evaluates every write through mongomock's
Python update engine and commits each document on its own (≈4,700 events/s here), and its
indexes are in-process hash tables rebuilt by scanning the whole collection whenever another
connection wrote, so a reader beside the worker pays a full scan per query. This store keeps the
documents exactly as BSON (the same bytes MongoDB would hold) and pulls a few top-level fields
out into real columns, so that:

- a batch is one SQLite transaction of ``executemany`` statements (WAL, ``synchronous=NORMAL``);
- the fields the journal indexes (:data:`INDEXABLE`) get real SQLite indexes, and a query that
  starts with them (equality, ranges, ``$in``; sorting) runs as SQL; whatever else a filter says
  is then checked in Python by :mod:`.matching` (MongoDB's semantics for the operators the
  project uses; any other operator is refused);
- readers in other processes open the file read-only (``mode=ro``) beside the writer: WAL lets
  them read while it writes, they never take a write lock and never create anything.

Documents must keep the indexable fields scalar (a string or a number, or absent/None) so the
columns mirror MongoDB's matching exactly; anything else is refused as a write error (code 2).

Supported: ``client[db][coll]``; ``find(filter, projection)`` with ``sort``/``skip``/``limit``;
``find_one``; ``count_documents``; ``insert_one``/``insert_many``; ``bulk_write`` of
``InsertOne``, ``UpdateOne`` (``$setOnInsert`` upsert or ``$set`` by ``_id``) and ``ReplaceOne``
by ``_id``; ``create_index`` (on indexable fields; ``unique``, ``partialFilterExpression`` with
``$exists``); ``index_information``; ``drop``; ``db.command("ping")``; ``db.transaction()`` (one
commit for many writes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import bson
from bson.codec_options import CodecOptions
from cryptoarena.trading.journal.matching import matches
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError

logger = logging.getLogger(__name__)

# Top-level fields kept as columns beside the BSON document (and so indexable).
INDEXABLE: Final = ("run_id", "strategy", "ts_ns", "seq", "client_id", "model_version", "event")
_COLUMNS: Final = {"_id": "id", **{name: name for name in INDEXABLE}}
_RANGE_OPS: Final = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_CODEC: Final[CodecOptions[dict[str, Any]]] = CodecOptions(tz_aware=True, tzinfo=dt.UTC)
SUFFIX: Final = ".sqlite3"
_BUSY_MS = 5000
# Documents decoded at a time by a query whose order SQL gives (see Cursor._run).
DECODE_CHUNK: Final = 1024
# Idle connections a read-only database keeps for its next reads (more are opened while more
# threads read at once, and closed when they come back beyond this).
READERS_KEPT: Final = 8
_MISSING: Final = object()
_FAST_KINDS: Final = {"new": "insert", "ins": "set_on_insert", "put": "replace"}
_UPDATE_ALL = ", ".join(f'"{c}"=excluded."{c}"' for c in (*INDEXABLE, "doc"))
_CONFLICT: Final = {
    "insert": "",
    "set_on_insert": " ON CONFLICT(id) DO NOTHING",  # other unique indexes still refuse
    "replace": f" ON CONFLICT(id) DO UPDATE SET {_UPDATE_ALL}",
}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class BadValueError(WriteError):
    pass


_SCALARS: Final = frozenset({str, int, float, type(None)})


def _scalar(value: Any) -> bool:
    return type(value) in _SCALARS or (
        isinstance(value, str | int | float) and not isinstance(value, bool)
    )


def _columns(doc: Mapping[str, Any], row: list[Any]) -> list[Any]:
    get = doc.get
    for name in INDEXABLE:
        value = get(name)
        row.append(value)
        if type(value) not in _SCALARS and not _scalar(value):
            raise BadValueError(
                f"field {name!r} must be a string or a number in the embedded store, "
                f"not {type(value).__name__}",
                2,
            )
    return row


def _key(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    if isinstance(value, bson.ObjectId):
        return value.binary
    raise BadValueError(f"an _id must be a string, an integer or an ObjectId, not {value!r}", 2)


class Client:
    """``Client(directory)[database]`` is the SQLite file ``<directory>/<database>.sqlite3``."""

    def __init__(
        self, directory: Path, *, readonly: bool = False, busy_timeout_ms: int = _BUSY_MS
    ) -> None:
        self.directory = Path(directory).absolute()
        self.readonly = readonly
        self.busy_timeout_ms = busy_timeout_ms
        self._dbs: dict[str, Database] = {}

    def __getitem__(self, name: str) -> Database:
        if name not in self._dbs:
            self._dbs[name] = Database(self, name)
        return self._dbs[name]

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()


class Database:
    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self.path = client.directory / f"{name}{SUFFIX}"
        self._conn: sqlite3.Connection | None = None
        self._tables: set[str] = set()
        self._depth = 0
        self.lock = threading.RLock()  # one connection, used by one thread at a time
        # A reader's connections beside the first, one per read under way: a long read (a
        # month's curves) and a small one (the status route's) run side by side in SQLite
        # (WAL readers do not block each other) instead of queueing for one connection.
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        self.unique: dict[str, bool] = {}  # collection -> has a unique index besides _id
        self._collections: dict[str, Collection] = {}

    # -- connection -----------------------------------------------------------------------
    def conn(self) -> sqlite3.Connection | None:
        """The connection, or None for a reader of a file that does not exist yet."""
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for one read (None: a reader of a file that does not exist yet). The
        writer's one connection, under its lock; a reader's own from a pool, so reads of
        several threads never wait for each other."""
        if not self.client.readonly:
            with self.lock:
                yield self.conn()
            return
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
            if conn is None:
                yield None
                return
        try:
            yield conn
        finally:
            with self._pool_lock:
                keep = not self._closed and len(self._idle) < READERS_KEPT
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def _open(self) -> sqlite3.Connection | None:
        ro = self.client.readonly
        if ro and not self.path.exists():
            return None
        if ro:
            conn = sqlite3.connect(
                f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.client.busy_timeout_ms)}")
            if not ro:
                # WAL: readers beside the writer, a commit appends instead of rewriting pages.
                # synchronous=NORMAL: durable against a process crash (a power cut may lose the
                # last commits, never corrupt the file), as with litemongo before.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS _indexes"
                    " (coll TEXT, name TEXT, spec BLOB, PRIMARY KEY (coll, name))"
                )
            self._tables = self._list_tables(conn)
        except BaseException:
            conn.close()  # e.g. "database is locked": the caller retries with a new connection
            raise
        return conn

    @staticmethod
    def _list_tables(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        return {r[0] for r in rows if not r[0].startswith(("_", "sqlite_"))}

    def has_table(self, name: str, conn: sqlite3.Connection | None = None) -> bool:
        conn = conn or self.conn()
        if conn is None:
            return False
        if name not in self._tables:  # created by the writer since we looked
            self._tables = self._list_tables(conn)
        return name in self._tables

    def ensure_table(self, name: str) -> sqlite3.Connection:
        conn = self.conn()
        if conn is None or self.client.readonly:
            raise OperationFailure("the embedded journal store was opened read-only")
        if name not in self._tables:
            cols = ", ".join(_q(c) for c in INDEXABLE)
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_q(name)}"
                f" (id PRIMARY KEY NOT NULL, {cols}, doc BLOB NOT NULL)"
            )
            self._tables.add(name)
        return conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- transactions ---------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One commit for every write inside (nested uses join the outer one)."""
        with self.lock:
            conn = self.conn()
            if conn is None or self.client.readonly:
                raise OperationFailure("the embedded journal store was opened read-only")
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BulkWriteError:
                # Ordered semantics: the writes before the refused one stay.
                self._depth = 0
                conn.execute("COMMIT")
                raise
            except BaseException:
                self._depth = 0
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    # -- pymongo surface ------------------------------------------------------------------
    def __getitem__(self, name: str) -> Collection:
        if name not in self._collections:
            self._collections[name] = Collection(self, name)
        return self._collections[name]

    def command(self, name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if name == "dbstats":  # MongoDB's storageSize: here the file and its write-ahead log
            files = (self.path, self.path.with_name(self.path.name + "-wal"))
            return {"ok": 1.0, "storageSize": sum(p.stat().st_size for p in files if p.exists())}
        if name != "ping":
            raise OperationFailure(f"the embedded journal store has no command {name!r}")
        with self.reading() as conn:
            if conn is not None:
                conn.execute("SELECT 1").fetchone()
        return {"ok": 1.0}

    def list_collection_names(self) -> list[str]:
        with self.reading() as conn:
            return sorted(self._list_tables(conn)) if conn is not None else []


class Collection:
    def __init__(self, database: Database, name: str) -> None:
        if not name or name.startswith(("_", "sqlite_", "$")):
            raise ValueError(f"invalid collection name {name!r}")
        self.database = database
        self.name = name
        self._t = _q(name)

    # -- writing --------------------------------------------------------------------------
    def _row(self, doc: Mapping[str, Any]) -> list[Any]:
        if "_id" not in doc:
            doc = {"_id": bson.ObjectId(), **doc}
        key = doc["_id"]  # (BSON encodes _id first, as MongoDB stores it)
        row = _columns(doc, [key if type(key) is str else _key(key)])
        row.append(bson.encode(doc, codec_options=_CODEC))
        return row

    def write_events(self, ops: list[tuple[str, Any, dict[str, Any]]]) -> None:
        """The journal's fast path (the same effect as the equivalent ``bulk_write``, without
        building pymongo request objects): ``(op, _id, document)`` with op ``new`` (insert),
        ``ins`` (insert if absent), ``put`` (replace or insert) or ``set`` (``$set`` the fields
        of an existing document). Errors are reported as by ``bulk_write(ordered=True)``."""
        with self.database.transaction():
            self.database.ensure_table(self.name)
            start = 0
            while start < len(ops):
                kind = ops[start][0]
                end = start + 1
                while end < len(ops) and ops[end][0] == kind:
                    end += 1
                if kind == "set":
                    reqs = [UpdateOne({"_id": k}, {"$set": d}) for _, k, d in ops[start:end]]
                    self._run_group("set", reqs, start, True)
                else:
                    rows: list[list[Any]] = []
                    bad: WriteError | None = None
                    for _, key, doc in ops[start:end]:
                        if doc.get("_id", _MISSING) != key:
                            doc = {**doc, "_id": key}
                        try:
                            rows.append(self._row(doc))
                        except WriteError as exc:
                            bad = exc
                            break
                    sql = self._insert_sql(_CONFLICT[_FAST_KINDS[kind]])
                    self._run_rows(rows, sql, start, ordered=True)
                    if bad is not None:
                        raise _bulk_error(start + len(rows), bad)
                start = end

    def insert_one(self, doc: Mapping[str, Any]) -> Any:
        self.bulk_write([InsertOne(dict(doc))])

    def insert_many(self, docs: Iterable[Mapping[str, Any]], ordered: bool = True) -> Any:
        """Plain inserts in one transaction; a duplicate ``_id`` raises ``BulkWriteError``
        (code 11000, ``keyPattern`` ``{"_id": 1}``) after the documents before it are in."""
        self.bulk_write([InsertOne(d) for d in docs], ordered=ordered)

    def bulk_write(self, requests: list[Any], ordered: bool = True) -> None:
        """``InsertOne``; ``UpdateOne({_id}, {$setOnInsert: doc}, upsert=True)`` (insert if
        absent); ``UpdateOne({_id}, {$set: fields})``; ``ReplaceOne({_id}, doc, upsert=True)``."""
        with self.database.transaction():
            self.database.ensure_table(self.name)
            start = 0
            while start < len(requests):
                kind = _kind(requests[start])
                end = start + 1
                while end < len(requests) and _kind(requests[end]) == kind:
                    end += 1
                self._run_group(kind, requests[start:end], start, ordered)
                start = end

    def _insert_sql(self, conflict: str = "") -> str:
        cols = ", ".join(["id", *(_q(c) for c in INDEXABLE), "doc"])
        marks = ", ".join("?" * (len(INDEXABLE) + 2))
        return f"INSERT INTO {self._t} ({cols}) VALUES ({marks}){conflict}"

    def _run_group(self, kind: str, reqs: list[Any], offset: int, ordered: bool) -> None:
        if kind in ("insert", "set_on_insert", "replace"):
            rows: list[list[Any]] = []
            bad: WriteError | None = None
            for r in reqs:
                try:
                    if kind == "insert":
                        rows.append(self._row(r._doc))
                    else:  # the _id comes from the filter
                        doc = r._doc["$setOnInsert"] if kind == "set_on_insert" else r._doc
                        key = r._filter["_id"]
                        if doc.get("_id", _MISSING) != key:
                            doc = {**doc, "_id": key}
                        rows.append(self._row(doc))
                except WriteError as exc:
                    bad = exc
                    break
            self._run_rows(rows, self._insert_sql(_CONFLICT[kind]), offset, ordered=ordered)
            if bad is not None:
                raise _bulk_error(offset + len(rows), bad)
        elif kind == "set":
            for i, r in enumerate(reqs):
                try:
                    self._set_fields(r._filter["_id"], r._doc["$set"], upsert=r._upsert)
                except WriteError as exc:
                    raise _bulk_error(offset + i, exc) from exc
        else:
            raise OperationFailure(f"the embedded journal store cannot run {reqs[0]!r}")

    def _run_rows(self, rows: list[list[Any]], sql: str, offset: int, *, ordered: bool) -> None:
        if not rows:
            return
        with self.database.transaction():
            conn = self.database.ensure_table(self.name)
            if " ON CONFLICT" in sql and not self._has_unique():
                conn.executemany(sql, rows)  # nothing can refuse a row: no savepoint needed
                return
            conn.execute("SAVEPOINT rows")
            try:
                conn.executemany(sql, rows)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO rows")
            else:
                conn.execute("RELEASE rows")
                return
            conn.execute("RELEASE rows")
            # One row broke a unique index: find it, keeping the rows before it (ordered).
            errors = []
            for i, row in enumerate(rows):
                try:
                    conn.execute(sql, row)
                except sqlite3.IntegrityError as exc:
                    errors.append(_dup_error(offset + i, exc, self._unique_keys()))
                    if ordered:
                        break
            if errors:
                raise BulkWriteError({"writeErrors": errors, "nInserted": 0})

    def _set_fields(self, key: Any, fields: Mapping[str, Any], *, upsert: bool) -> None:
        conn = self.database.ensure_table(self.name)
        row = conn.execute(f"SELECT doc FROM {self._t} WHERE id=?", (_key(key),)).fetchone()
        if row is None:
            if not upsert:
                return
            doc: dict[str, Any] = {"_id": key}
        else:
            doc = bson.decode(row[0], codec_options=_CODEC)
        for path, value in fields.items():
            target = doc
            *parents, leaf = path.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        new = self._row(doc)
        sets = ", ".join(f"{_q(c)}=?" for c in (*INDEXABLE, "doc"))
        if row is None:
            conn.execute(self._insert_sql(), new)
        else:
            conn.execute(f"UPDATE {self._t} SET {sets} WHERE id=?", [*new[1:], new[0]])

    def _has_unique(self) -> bool:
        """A unique index besides _id (cached per collection; create_index clears it)."""
        cached = self.database.unique.get(self.name)
        if cached is None:
            cached = any(i.get("unique") for i in self.index_information().values())
            self.database.unique[self.name] = cached
        return cached

    def _unique_keys(self) -> list[list[tuple[str, int]]]:
        return [
            info["key"] for info in self.index_information().values() if info.get("unique")
        ] or [[("_id", 1)]]

    def drop(self) -> None:
        with self.database.transaction():
            conn = self.database.ensure_table(self.name)
            conn.execute(f"DROP TABLE IF EXISTS {self._t}")
            conn.execute("DELETE FROM _indexes WHERE coll=?", (self.name,))
            self.database._tables.discard(self.name)
            self.database.unique.pop(self.name, None)

    # -- indexes --------------------------------------------------------------------------
    def create_index(
        self,
        keys: list[tuple[str, int]],
        *,
        unique: bool = False,
        partialFilterExpression: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> str:
        keys = [(field, int(direction)) for field, direction in keys]
        for field, _ in keys:
            if field not in _COLUMNS:
                raise OperationFailure(
                    f"the embedded journal store indexes only {sorted(_COLUMNS)}, not {field!r}"
                )
        name = name or "_".join(f"{f}_{d}" for f, d in keys)
        where = ""
        if partialFilterExpression:
            parts = []
            for field, cond in partialFilterExpression.items():
                if field not in _COLUMNS or cond != {"$exists": True}:
                    raise OperationFailure("partial indexes support only {field: {$exists: true}}")
                parts.append(f"{_q(_COLUMNS[field])} IS NOT NULL")
            where = " WHERE " + " AND ".join(parts)
        cols = ", ".join(
            f"{_q(_COLUMNS[f])} {'DESC' if d < 0 else 'ASC'}" for f, d in keys
        )  # fmt: skip
        spec: dict[str, Any] = {"key": keys, "v": 2}
        if unique:
            spec["unique"] = True
        if partialFilterExpression:
            spec["partialFilterExpression"] = dict(partialFilterExpression)
        with self.database.transaction():
            conn = self.database.ensure_table(self.name)
            conn.execute(
                f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS"
                f" {_q(f'{self.name}.{name}')} ON {self._t} ({cols}){where}"
            )
            conn.execute(
                "INSERT OR REPLACE INTO _indexes VALUES (?, ?, ?)",
                (self.name, name, bson.encode({"spec": spec})),
            )
            self.database.unique.pop(self.name, None)
        return name

    def index_information(self) -> dict[str, dict[str, Any]]:
        info: dict[str, dict[str, Any]] = {"_id_": {"key": [("_id", 1)], "v": 2}}
        with self.database.reading() as conn:
            if conn is None:
                return info
            try:
                rows = conn.execute(
                    "SELECT name, spec FROM _indexes WHERE coll=?", (self.name,)
                ).fetchall()
            except sqlite3.OperationalError:  # a reader of a file with no index yet
                rows = []
        for name, blob in rows:
            spec = bson.decode(blob)["spec"]
            spec["key"] = [tuple(k) for k in spec["key"]]
            info[name] = spec
        return info

    # -- reading --------------------------------------------------------------------------
    def delete_many(self, filter: Mapping[str, Any] | None = None) -> DeleteResult:
        """Delete the matching documents in one transaction (pymongo's ``delete_many``). Row ids
        of the remaining documents are unchanged, so a tail reading by rowid is not confused."""
        where, params, residual = _translate(dict(filter or {}))
        with self.database.lock:
            if not self.database.has_table(self.name):
                return DeleteResult(0)
            conn = self.database.conn()
            assert conn is not None
            with self.database.transaction():
                if not residual:
                    return DeleteResult(
                        conn.execute(f"DELETE FROM {self._t}{where}", params).rowcount
                    )
                rows = conn.execute(f"SELECT rowid, doc FROM {self._t}{where}", params).fetchall()
                ids = [(r,) for r, blob in rows if matches(residual, _decode(blob))]
                conn.executemany(f"DELETE FROM {self._t} WHERE rowid = ?", ids)
                return DeleteResult(len(ids))

    def find(self, filter: Mapping[str, Any] | None = None, projection: Any = None) -> Cursor:
        return Cursor(self, dict(filter or {}), projection)

    def find_one(
        self, filter: Mapping[str, Any] | None = None, projection: Any = None
    ) -> dict[str, Any] | None:
        for doc in self.find(filter, projection).limit(1):
            return doc
        return None

    def count_documents(self, filter: Mapping[str, Any] | None = None) -> int:
        where, params, residual = _translate(dict(filter or {}))
        with self.database.reading() as conn:
            if conn is None or not self.database.has_table(self.name, conn):
                return 0
            if not residual:
                sql = f"SELECT COUNT(*) FROM {self._t}{where}"
                return int(conn.execute(sql, params).fetchone()[0])
            rows = conn.execute(f"SELECT doc FROM {self._t}{where}", params).fetchall()
        return sum(1 for (blob,) in rows if matches(residual, _decode(blob)))


@dataclass(frozen=True)
class DeleteResult:
    deleted_count: int


class Cursor:
    def __init__(self, coll: Collection, filter: dict[str, Any], projection: Any) -> None:
        self._coll = coll
        self._filter = filter
        self._projection = _projection(projection)
        self._sort: list[tuple[str, int]] = []
        self._limit = 0
        self._skip = 0

    def sort(self, key: Any, direction: int | None = None) -> Cursor:
        self._sort = [(key, direction or 1)] if isinstance(key, str) else list(key)
        return self

    def limit(self, n: int) -> Cursor:
        self._limit = int(n)
        return self

    def skip(self, n: int) -> Cursor:
        self._skip = int(n)
        return self

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._run())

    def explain(self) -> dict[str, Any]:
        """SQLite's plan for this query (pymongo's ``explain`` shape, SQLite's content): the
        ``winningPlan`` lines say which index is searched; ``residual`` is what Python checks."""
        sql, params, residual, _ = self._sql()
        coll = self._coll
        with coll.database.reading() as conn:
            plan = (
                [r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                if conn is not None and coll.database.has_table(coll.name, conn)
                else []
            )
        return {"queryPlanner": {"winningPlan": plan, "sql": sql, "residual": residual}}

    def _sql(self) -> tuple[str, list[Any], dict[str, Any], bool]:
        where, params, residual = _translate(self._filter)
        sql_sort = all(field in _COLUMNS for field, _ in self._sort)
        order = ""
        if self._sort and sql_sort:
            terms = [f"{_q(_COLUMNS[f])} {'DESC' if d < 0 else 'ASC'}" for f, d in self._sort]
            # Ties in insertion order, walking the index the same way (no sort step).
            terms.append("rowid DESC" if self._sort[-1][1] < 0 else "rowid")
            order = " ORDER BY " + ", ".join(terms)
        elif not self._sort:
            order = " ORDER BY rowid"  # insertion order, like MongoDB's natural order
        page = ""
        if not residual and (sql_sort or not self._sort) and (self._limit or self._skip):
            page = f" LIMIT {self._limit or -1} OFFSET {self._skip}"
        sql = f"SELECT doc FROM {self._coll._t}{where}{order}{page}"
        return sql, params, residual, bool(page)

    def _run(self) -> list[dict[str, Any]]:
        sql, params, residual, paged = self._sql()
        coll = self._coll
        with coll.database.reading() as conn:
            if conn is None or not coll.database.has_table(coll.name, conn):
                return []
            blobs = [blob for (blob,) in conn.execute(sql, params)]
        with _no_gc():  # many fresh acyclic dicts: the cycle collector would only slow this
            if self._sort and not all(field in _COLUMNS for field, _ in self._sort):
                docs = bson.decode_all(b"".join(blobs), codec_options=_CODEC)
                return self._finish(docs, residual, paged)
            # In SQL's order already: decoded a chunk at a time and filtered and projected
            # as it goes, so a month's equity (tens of thousands of full documents) never
            # exists decoded all at once when a few fields of each are asked for.
            out: list[dict[str, Any]] = []
            for i in range(0, len(blobs), DECODE_CHUNK):
                chunk = b"".join(blobs[i : i + DECODE_CHUNK])
                out += self._select(bson.decode_all(chunk, codec_options=_CODEC), residual)
            if not paged:
                out = out[self._skip : self._skip + self._limit if self._limit else None]
            return out

    def _select(self, docs: list[dict[str, Any]], residual: dict[str, Any]) -> list[dict[str, Any]]:
        """The documents matching the residual filter, projected."""
        if residual:
            docs = [d for d in docs if matches(residual, d)]
        return self._project(docs)

    def _finish(
        self, docs: list[dict[str, Any]], residual: dict[str, Any], paged: bool
    ) -> list[dict[str, Any]]:
        if residual:
            docs = [d for d in docs if matches(residual, d)]
        for field, direction in reversed(self._sort):
            docs.sort(key=partial(_field_key, field), reverse=direction < 0)
        if not paged:
            end = self._skip + self._limit if self._limit else None
            docs = docs[self._skip : end]
        return self._project(docs)

    def _project(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._projection is not None:
            include, fields, keep_id = self._projection
            if include and not any("." in f for f in fields):  # top-level fields: one pass
                keys = ["_id", *fields] if keep_id else fields
                return [{k: d[k] for k in keys if k in d} for d in docs]
            docs = [_project(d, include, fields, keep_id) for d in docs]
        return docs


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _kind(req: Any) -> str:
    if isinstance(req, InsertOne):
        return "insert"
    if not isinstance(req, ReplaceOne | UpdateOne):
        return "other"
    filt = req._filter
    if not isinstance(filt, dict) or set(filt) != {"_id"}:
        return "other"
    if isinstance(req, ReplaceOne):
        return "replace" if req._upsert else "other"
    if isinstance(req, UpdateOne):
        update = req._doc
        if isinstance(update, dict) and set(update) == {"$setOnInsert"} and req._upsert:
            return "set_on_insert"
        if isinstance(update, dict) and set(update) == {"$set"}:
            return "set"
    return "other"


def _dup_error(index: int, exc: sqlite3.IntegrityError, unique: list[Any]) -> dict[str, Any]:
    msg = str(exc)
    pattern: dict[str, int] = {"_id": 1}
    if ".id" not in msg:  # "UNIQUE constraint failed: orders.client_id"
        for keys in unique:
            if all(f"{_COLUMNS.get(f, f)}" in msg for f, _ in keys):
                pattern = dict(keys)
                break
    return {"index": index, "code": 11000, "errmsg": f"E11000 duplicate key: {msg}",
            "keyPattern": pattern}  # fmt: skip


def _bulk_error(index: int, exc: WriteError) -> BulkWriteError:
    return BulkWriteError(
        {"writeErrors": [{"index": index, "code": exc.code, "errmsg": str(exc)}], "nInserted": 0}
    )


def _decode(blob: bytes) -> dict[str, Any]:
    return bson.decode(blob, codec_options=_CODEC)


def _translate(filt: dict[str, Any]) -> tuple[str, list[Any], dict[str, Any]]:
    """The SQL WHERE for the parts of ``filt`` on indexed columns that SQL decides exactly, and
    the rest (checked in Python)."""
    clauses: list[str] = []
    params: list[Any] = []
    residual: dict[str, Any] = {}
    for field, cond in filt.items():
        col = _COLUMNS.get(field)
        done = col is not None and _clause(_q(col), cond, clauses, params, field == "_id")
        if not done:
            residual[field] = cond
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return where, params, residual


def _clause(col: str, cond: Any, clauses: list[str], params: list[Any], is_id: bool) -> bool:
    """Append an exact SQL clause for ``col`` matching ``cond``; False if not exactly possible."""
    if is_id and isinstance(cond, bson.ObjectId):
        cond = cond.binary
    if cond is None and not is_id:
        clauses.append(f"{col} IS NULL")  # null or missing, as in MongoDB
        return True
    if _scalar(cond) and cond is not None:
        clauses.append(f"{col} = ?")
        params.append(cond)
        return True
    if not isinstance(cond, dict) or not cond or not all(k.startswith("$") for k in cond):
        return False
    parts: list[str] = []
    values: list[Any] = []
    for op, value in cond.items():
        if op == "$eq" and _scalar(value) and value is not None:
            parts.append(f"{col} = ?")
            values.append(value)
        elif op in _RANGE_OPS and _scalar(value) and value is not None:
            # MongoDB compares only within a type class; SQLite orders numbers before text.
            types = "'text'" if isinstance(value, str) else "'integer','real'"
            parts.append(f"({col} {_RANGE_OPS[op]} ? AND typeof({col}) IN ({types}))")
            values.append(value)
        elif (
            op == "$in"
            and isinstance(value, list | tuple)
            and value
            and all(_scalar(v) and v is not None for v in value)
        ):
            parts.append(f"{col} IN ({', '.join('?' * len(value))})")
            values.extend(value)
        else:
            return False
    clauses.extend(parts)
    params.extend(values)
    return True


def _projection(spec: Any) -> tuple[bool, list[str], bool] | None:
    """(include?, fields, keep _id) or None for whole documents."""
    if spec is None:
        return None
    if isinstance(spec, list | tuple):
        spec = dict.fromkeys(spec, 1)
    keep_id = bool(spec.get("_id", 1))
    fields = [k for k in spec if k != "_id"]
    if not fields:
        return (not keep_id, [], keep_id) if not keep_id else (True, [], True)
    include = bool(spec[fields[0]])
    return include, fields, keep_id


def _project(doc: dict[str, Any], include: bool, fields: list[str], keep_id: bool) -> dict:
    if include:
        out: dict[str, Any] = {"_id": doc["_id"]} if keep_id and "_id" in doc else {}
        for path in fields:
            _copy_path(doc, out, path.split("."))
        return out
    out = dict(doc)
    if not keep_id:
        out.pop("_id", None)
    for path in fields:
        *parents, leaf = path.split(".")
        target: Any = out
        for part in parents:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.pop(leaf, None)
    return out


def _copy_path(src: dict[str, Any], dst: dict[str, Any], parts: list[str]) -> None:
    head = parts[0]
    if head not in src:
        return
    if len(parts) == 1:
        dst[head] = src[head]
    elif isinstance(src[head], dict):
        _copy_path(src[head], dst.setdefault(head, {}), parts[1:])


def _get(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _field_key(field: str, doc: Mapping[str, Any]) -> tuple[int, Any]:
    return _sort_key(_get(doc, field))


def _sort_key(value: Any) -> tuple[int, Any]:
    # MongoDB's order of types: null < numbers < strings < objects < ... < dates
    if value is None:
        return (0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, bool):
        return (5, value)
    if isinstance(value, dt.datetime):
        return (6, value)
    return (3, repr(value))


__all__ = ["INDEXABLE", "BadValueError", "Client", "Collection", "Database", "DuplicateKeyError"]
