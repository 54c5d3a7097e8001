"""The database side of the journal: one code path for the embedded store and MongoDB.

``docstore.Client(dir)`` is the embedded store (the pymongo subset the journal uses, on one
SQLite file); with a URI the same calls go to ``pymongo.MongoClient``. Writes are idempotent by
``_id``: a live event is inserted only if absent (``$setOnInsert`` upsert), and a bulk (backtest)
event is a plain insert whose duplicate ``_id`` counts as already written; so a replay after a
partial failure writes each event exactly once and never overwrites a later update (e.g. a
prediction's realised price).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import bson
import bson.errors
from bson.codec_options import CodecOptions
from cryptoarena.config import MongoSettings
from cryptoarena.trading.journal import docstore, schema
from cryptoarena.trading.journal.spill import Op, SpillLog
from pymongo import InsertOne, MongoClient, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, ConnectionFailure, InvalidOperation

logger = logging.getLogger(__name__)

# Documents BSON cannot encode (e.g. a lone surrogate in a string): retrying cannot help.
_UNENCODABLE = (
    bson.errors.InvalidDocument,
    bson.errors.InvalidStringData,
    OverflowError,
    UnicodeEncodeError,
)
# Write errors that retrying cannot fix: the op goes to the rejects file instead of blocking.
_PERMANENT_CODES = {11000, 11001, 121, 2, 9, 52, 56}


@dataclass(frozen=True)
class StoreConfig:
    server_selection_timeout_ms: int = 2000
    socket_timeout_ms: int = 5000
    busy_timeout_ms: int = 5000  # embedded: how long a write waits for SQLite's lock


def connect(mongo: MongoSettings, config: StoreConfig, *, readonly: bool = False) -> Any:
    """A client for the configured store: MongoDB when a URI is set, else the embedded one
    (read-only: the SQLite file opened ``mode=ro``, nothing created)."""
    if mongo.uri is None:
        return docstore.Client(
            mongo.embedded_dir, readonly=readonly, busy_timeout_ms=config.busy_timeout_ms
        )
    return MongoClient(
        mongo.uri.get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=config.server_selection_timeout_ms,
        connectTimeoutMS=config.server_selection_timeout_ms,
        socketTimeoutMS=config.socket_timeout_ms,
        appname="cryptoarena-journal",
    )


def identity(mongo: MongoSettings) -> str:
    """What names this store (no credentials): the embedded file, or MongoDB's hosts and
    database. A spill belongs to one store and is replayed only into it."""
    if mongo.uri is None:
        path = (mongo.embedded_dir / f"{mongo.database}{docstore.SUFFIX}").absolute()
        return f"embedded:{path}"
    uri = mongo.uri.get_secret_value()
    scheme, _, rest = uri.partition("://")
    hosts = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    return f"{scheme}://{','.join(sorted(hosts.lower().split(',')))}/{mongo.database}"


def spill_name(mongo: MongoSettings) -> str:
    """The file name stem of this store's spill, lock and rejects files."""
    digest = hashlib.sha256(identity(mongo).encode()).hexdigest()[:12]
    kind = "embedded" if mongo.uri is None else "mongodb"
    return f"{mongo.database}.{kind}-{digest}"


_LITEMONGO_CODEC: Final[CodecOptions[dict[str, Any]]] = CodecOptions(tz_aware=True)


def _litemongo_documents(path: Path) -> Iterator[dict[str, Any]]:
    """The documents of one litemongo collection file (SQLite: a ``documents`` table of
    ``(_id, doc)`` rows, ``doc`` the BSON bytes), in insertion order; none if there is no file.
    Read directly, so litemongo is no run-time dependency for this one-time copy (a plain
    connection: one left with a ``-wal`` file by a crash is recovered on open)."""
    if not path.is_file():
        return
    conn = sqlite3.connect(path)
    try:
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'documents'"
        ).fetchone():
            return
        for (blob,) in conn.execute("SELECT doc FROM documents ORDER BY ROWID"):
            yield bson.decode(blob, codec_options=_LITEMONGO_CODEC)
    finally:
        conn.close()


def migrate_litemongo(mongo: MongoSettings, chunk: int = 5_000) -> int:
    """Copy a journal kept by litemongo (the embedded store before this one: a folder of SQLite
    files, ``<embedded_dir>/<database>/``) into the embedded store, then rename that folder to
    ``<database>.litemongo-migrated``. Idempotent (documents are upserted by ``_id``), so an
    interrupted copy simply runs again at the next writer's open. Returns documents copied."""
    old = mongo.embedded_dir / mongo.database
    if mongo.uri is not None or not old.is_dir():
        return 0
    logger.warning("journal: copying the litemongo journal %s into the embedded store", old)
    target = docstore.Client(mongo.embedded_dir)
    copied = 0
    try:
        db = target[mongo.database]
        ensure_indexes(db)
        for name in schema.COLLECTIONS:
            docs: list[tuple[str, Any, dict[str, Any]]] = []
            for doc in _litemongo_documents(old / name):
                docs.append(("put", doc["_id"], doc))
                if len(docs) >= chunk:
                    db[name].write_events(docs)
                    copied, docs = copied + len(docs), []
            if docs:
                db[name].write_events(docs)
                copied += len(docs)
    finally:
        target.close()
    old.rename(old.with_name(f"{mongo.database}.litemongo-migrated"))
    logger.warning("journal: copied %d documents from litemongo; the old folder is kept", copied)
    return copied


@contextlib.contextmanager
def batch(db: Any) -> Iterator[None]:
    """One transaction (one commit) per batch on the embedded store; MongoDB commits per
    write (no sessions needed: every write is idempotent)."""
    if not isinstance(db, docstore.Database):
        yield
        return
    with db.transaction():
        yield


def ensure_indexes(db: Any) -> None:
    for coll, specs in schema.INDEXES.items():
        for keys, options in specs:
            db[coll].create_index(keys, **options)


def _to_request(op: Op) -> UpdateOne | ReplaceOne | InsertOne:
    kind = op["op"]
    if kind == "new":  # bulk path: a new event, _id first as MongoDB stores it
        doc = op["d"]
        return InsertOne({"_id": op["id"], **{k: v for k, v in doc.items() if k != "_id"}})
    if kind == "ins":
        doc = {k: v for k, v in op["d"].items() if k != "_id"}
        return UpdateOne({"_id": op["id"]}, {"$setOnInsert": doc}, upsert=True)
    if kind == "set":
        return UpdateOne({"_id": op["id"]}, {"$set": op["d"]})
    if kind == "put":
        return ReplaceOne({"_id": op["id"]}, op["d"], upsert=True)
    raise ValueError(f"unknown journal op {kind!r}")


def _derived(equity: list[Op]) -> list[Op]:
    """Read-model writes that follow from a batch's equity events: the latest snapshot per run
    and strategy, and the last snapshot of each minute (the report's per-minute curve). Only
    the last event per key is written (last write wins anyway)."""
    latest: dict[str, Op] = {}
    minutes: dict[str, tuple[Op, int]] = {}
    for op in equity:
        doc = op["d"]
        run_id, strategy = doc["run_id"], doc["strategy"]
        latest[schema.equity_latest_id(run_id, strategy)] = op
        minute = int(doc["ts_ns"]) // schema.MINUTE_NS * schema.MINUTE_NS
        minutes[schema.equity_minute_id(run_id, strategy, minute)] = (op, minute)
    out: list[Op] = []
    for key, op in latest.items():
        doc = {**op["d"], "_id": key, "event_id": op["id"]}
        out.append({**op, "c": schema.EQUITY_LATEST, "op": "put", "id": key, "d": doc})
    for key, (op, minute) in minutes.items():
        doc = {**op["d"], "_id": key, "event_id": op["id"], "minute_ns": minute}
        out.append({**op, "c": schema.EQUITY_MINUTE, "op": "put", "id": key, "d": doc})
    return out


def apply(db: Any, ops: list[Op], spill: SpillLog) -> None:
    """Write ``ops`` in order per collection, in one transaction on the embedded store. Raises
    on an outage (nothing is lost: the caller spills and replays the same ops later, which is
    idempotent)."""
    groups: dict[str, list[Op]] = {}
    for op in ops:
        if op["op"] == "nop":  # a seq used up by a write folded into an earlier op
            continue
        groups.setdefault(op["c"], []).append(op)
    equity = [op for op in groups.get("equity", ()) if op["op"] in ("ins", "new")]
    for extra in _derived(equity):
        groups.setdefault(extra["c"], []).append(extra)
    with batch(db):
        for coll, group in groups.items():
            _apply_group(db[coll], group, spill)


def _already_written(op: Op, error: dict[str, Any]) -> bool:
    """A bulk insert whose ``_id`` is already there: written before (a replay), not a refusal."""
    return (
        op["op"] == "new" and error.get("code") == 11000 and error.get("keyPattern") == {"_id": 1}
    )


def _apply_group(collection: Any, ops: list[Op], spill: SpillLog) -> None:
    fast = isinstance(collection, docstore.Collection)
    start = 0
    while start < len(ops):
        try:
            if fast:
                collection.write_events([(op["op"], op["id"], op["d"]) for op in ops[start:]])
            else:
                collection.bulk_write([_to_request(op) for op in ops[start:]], ordered=True)
            return
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if not errors or errors[0].get("code") not in _PERMANENT_CODES:
                raise
            bad = start + int(errors[0]["index"])
            if not _already_written(ops[bad], errors[0]):
                spill.reject(ops[bad], str(errors[0].get("errmsg")))
            start = bad + 1
        except Exception as exc:
            # An outage (or doubt) propagates: the caller spills and replays later. Only a
            # document the database cannot take while it answers is isolated and rejected.
            poison = isinstance(exc, _UNENCODABLE) or (not _transient(exc) and _answers(collection))
            if not poison:
                raise
            if len(ops) - start == 1:
                spill.reject(ops[start], repr(exc))
                return
            for op in ops[start:]:  # find the offending op(s); the others are written
                _apply_group(collection, [op], spill)
            return


def _transient(exc: BaseException) -> bool:
    """Errors that mean the store is away or busy (retrying later can succeed)."""
    return isinstance(exc, ConnectionFailure | InvalidOperation | sqlite3.Error | OSError)


def _answers(collection: Any) -> bool:
    try:
        collection.database.command("ping")
    except Exception:
        return False
    return True
