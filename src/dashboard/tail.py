"""Following the journal as it grows: new documents of each collection since the last look.

The embedded store (:mod:`cryptoarena.trading.journal.docstore`) is one SQLite file with one
table per collection: an indexed column per indexable field, and the document as BSON. A table
grows by rowid (a compaction deletes only old rows, never the newest), and the in-place writes it does (a forecast's
realised price ``$set`` later, upserts) keep the row's rowid, so :class:`EmbeddedTail` opens the
file read-only (``mode=ro``: no lock, no writes, WAL lets it read beside the writer) and reads
only the rows after the last rowid it saw, per table. With MongoDB (``ARENA_MONGO__URI``),
:class:`QueryTail` asks the journal for a run's documents newer than the last timestamp seen
(real indexes answer that).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from pathlib import Path
from typing import Any, Protocol

import bson
from bson.codec_options import CodecOptions
from cryptoarena.trading.journal import docstore

logger = logging.getLogger(__name__)

# What the dashboard follows; predictions are re-read near the end (their realised price is
# filled in 15 s later, in place).
TAILED = ("runs", "equity", "fills", "predictions", "risk_events", "markouts")
REREAD_PREDICTIONS = 64
BUSY_MS = 5000  # a reader waits this long for the writer's checkpoint, never fails at once


class Tail(Protocol):
    def poll(self) -> dict[str, list[dict[str, Any]]]:
        """New documents per collection since the last call (the first call: the backlog)."""
        ...

    def close(self) -> None: ...


class EmbeddedTail:
    """Read-only tail of the embedded store's SQLite file ``<embedded_dir>/<database>.sqlite3``."""

    def __init__(self, embedded_dir: Path, database: str) -> None:
        self._path = (Path(embedded_dir) / f"{database}{docstore.SUFFIX}").absolute()
        self._codec: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, tzinfo=dt.UTC)
        self._db: sqlite3.Connection | None = None
        self._last: dict[str, int] = {}

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is not None:
            return self._db
        if not self._path.is_file():
            return None  # no journal yet: the first writer creates it
        conn = sqlite3.connect(
            f"{self._path.as_uri()}?mode=ro", uri=True, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        self._db = conn
        return conn

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        conn = self._conn()
        if conn is None:
            return []
        try:
            return list(conn.execute(sql, args).fetchall())
        except sqlite3.OperationalError as exc:  # a table is created with its first write
            if "no such table" in str(exc):
                return []
            raise

    def _rows(self, coll: str, after: int, limit: int = 50_000) -> list[tuple[int, bytes]]:
        return self._query(
            f'SELECT rowid, doc FROM "{coll}" WHERE rowid > ? ORDER BY rowid LIMIT ?',
            (after, limit),
        )

    def _max_rowid(self, coll: str) -> int:
        rows = self._query(f'SELECT max(rowid) FROM "{coll}"')
        return int(rows[0][0] or 0) if rows else 0

    def poll(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for coll in TAILED:
            if coll not in self._last:
                # Runs from the start (small); the rest from the present: a run's history is
                # read through the journal's indexes when the run is asked for (memory.py).
                self._last[coll] = 0 if coll == "runs" else self._max_rowid(coll)
            after = self._last[coll]
            if coll == "predictions" and after > 0:
                after = max(0, after - REREAD_PREDICTIONS)  # pick up realised prices
            rows = self._rows(coll, after)
            if rows:
                self._last[coll] = max(self._last[coll], rows[-1][0])
            out[coll] = [bson.decode(doc, codec_options=self._codec) for _, doc in rows]
        return out

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class QueryTail:
    """MongoDB: the latest run's documents newer than the last timestamp seen, per collection."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self._run: str | None = None
        self._cursor: dict[str, tuple[int, set[str]]] = {}

    def poll(self) -> dict[str, list[dict[str, Any]]]:
        runs = self.journal.find("runs", {}, sort=[("ts_ns", -1)], limit=50)
        out: dict[str, list[dict[str, Any]]] = {"runs": runs}
        if not runs:
            return out
        run = str(runs[0]["run_id"])
        if run != self._run:
            self._run, self._cursor = run, {}
        for coll in TAILED[1:]:
            if coll not in self._cursor:  # from the present: the history is read on demand
                top = self.journal.find(coll, {"run_id": run}, sort=[("ts_ns", -1)], limit=1)
                self._cursor[coll] = (int(top[0]["ts_ns"]) if top else -1, set())
            ts, seen = self._cursor[coll]
            filt: dict[str, Any] = {"run_id": run}
            if ts >= 0:
                # Predictions are re-read for 30 s back: their realised price arrives later.
                back = 30 * 10**9 if coll == "predictions" else 0
                filt["ts_ns"] = {"$gte": ts - back}
            docs = self.journal.find(coll, filt, sort=[("ts_ns", 1)], limit=50_000)
            fresh = [d for d in docs if coll == "predictions" or str(d["_id"]) not in seen]
            if docs:
                top = int(docs[-1]["ts_ns"])
                ids = {str(d["_id"]) for d in docs if int(d["ts_ns"]) == top}
                self._cursor[coll] = (top, ids | (seen if top == ts else set()))
            out[coll] = fresh
        return out

    def close(self) -> None:
        return None
