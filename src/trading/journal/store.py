"""The database side of the journal: one code path for litemongo (embedded) and MongoDB.

``litemongo.connect(dir)`` returns a pymongo-compatible client on SQLite files; with a URI the
same calls go to ``pymongo.MongoClient``. Writes are idempotent by ``_id``: an event is inserted
only if absent (``$setOnInsert`` upsert), so a replay after a partial failure writes each event
exactly once and never overwrites a later update (e.g. a prediction's realised price).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

import bson.errors
import litemongo
from cryptoarena.config import MongoSettings
from cryptoarena.trading.journal import schema
from cryptoarena.trading.journal.spill import Op, SpillLog
from pymongo import MongoClient, ReplaceOne, UpdateOne
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


def connect(mongo: MongoSettings, config: StoreConfig) -> Any:
    """A client for the configured store: MongoDB when a URI is set, else litemongo."""
    if mongo.uri is None:
        mongo.embedded_dir.mkdir(parents=True, exist_ok=True)
        return litemongo.connect(str(mongo.embedded_dir.absolute()), tz_aware=True)
    return MongoClient(
        mongo.uri.get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=config.server_selection_timeout_ms,
        connectTimeoutMS=config.server_selection_timeout_ms,
        socketTimeoutMS=config.socket_timeout_ms,
        appname="cryptoarena-journal",
    )


def ensure_indexes(db: Any) -> None:
    for coll, specs in schema.INDEXES.items():
        for keys, options in specs:
            db[coll].create_index(keys, **options)


def _to_request(op: Op) -> UpdateOne | ReplaceOne:
    kind = op["op"]
    if kind == "ins":
        doc = {k: v for k, v in op["d"].items() if k != "_id"}
        return UpdateOne({"_id": op["id"]}, {"$setOnInsert": doc}, upsert=True)
    if kind == "set":
        return UpdateOne({"_id": op["id"]}, {"$set": op["d"]})
    if kind == "put":
        return ReplaceOne({"_id": op["id"]}, op["d"], upsert=True)
    raise ValueError(f"unknown journal op {kind!r}")


def _derived(op: Op) -> list[Op]:
    """Read-model writes that follow from an event (latest equity per run and strategy)."""
    if op["op"] == "ins" and op["c"] == "equity":
        doc = op["d"]
        key = schema.equity_latest_id(doc["run_id"], doc["strategy"])
        latest = {**doc, "_id": key, "event_id": op["id"]}
        return [{**op, "c": schema.EQUITY_LATEST, "op": "put", "id": key, "d": latest}]
    return []


def apply(db: Any, ops: list[Op], spill: SpillLog) -> None:
    """Write ``ops`` in order per collection. Raises on an outage (nothing is lost: the caller
    spills and replays the same ops later, which is idempotent)."""
    groups: dict[str, list[Op]] = {}
    for op in ops:
        groups.setdefault(op["c"], []).append(op)
        for extra in _derived(op):
            groups.setdefault(extra["c"], []).append(extra)
    for coll, group in groups.items():
        _apply_group(db[coll], group, spill)


def _apply_group(collection: Any, ops: list[Op], spill: SpillLog) -> None:
    start = 0
    while start < len(ops):
        try:
            collection.bulk_write([_to_request(op) for op in ops[start:]], ordered=True)
            return
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if not errors or errors[0].get("code") not in _PERMANENT_CODES:
                raise
            bad = start + int(errors[0]["index"])
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
