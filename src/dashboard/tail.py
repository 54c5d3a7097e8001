"""Following the journal as it grows: new documents of each collection since the last look.

litemongo's indexes are in-process hash indexes (equality only) that a reader rebuilds by
decoding the whole collection whenever another process wrote to it, so a time-window query on a
journal a worker is writing costs a full decode (seconds on a day of data). The embedded store
keeps each collection as one SQLite file whose ``documents`` table grows by rowid, and updates in
place keep their rowid; :class:`EmbeddedTail` reads those files read-only (no lock, no writes, no
index rebuilds) and returns only the rows after the last one it saw. With MongoDB
(``ARENA_MONGO__URI``), :class:`QueryTail` asks the journal for a run's documents newer than the
last timestamp seen (real indexes answer that).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, Protocol

import bson
from bson.codec_options import CodecOptions

logger = logging.getLogger(__name__)

# What the dashboard follows; predictions are re-read near the end (their realised price is
# filled in 15 s later, in place).
TAILED = ("runs", "equity", "fills", "predictions", "risk_events")
# On a cold start, read at most this many of the newest forecasts (older ones are not shown).
PREDICTION_BACKLOG = 20_000
REREAD_PREDICTIONS = 64


class Tail(Protocol):
    def poll(self) -> dict[str, list[dict[str, Any]]]:
        """New documents per collection since the last call (the first call: the backlog)."""
        ...

    def close(self) -> None: ...


class EmbeddedTail:
    """Read-only tail of litemongo's SQLite collection files."""

    def __init__(self, embedded_dir: Path, database: str) -> None:
        self._dir = Path(embedded_dir) / database
        self._codec: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)
        self._conns: dict[str, sqlite3.Connection] = {}
        self._last: dict[str, int] = {}

    def _conn(self, coll: str) -> sqlite3.Connection | None:
        conn = self._conns.get(coll)
        if conn is not None:
            return conn
        path = self._dir / coll
        if not path.is_file():
            return None  # not created yet: the worker has not journaled this kind
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._conns[coll] = conn
        return conn

    def _rows(self, coll: str, after: int, limit: int = 50_000) -> list[tuple[int, bytes]]:
        conn = self._conn(coll)
        if conn is None:
            return []
        try:
            cur = conn.execute(
                "SELECT rowid, doc FROM documents WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, limit),
            )
            return list(cur.fetchall())
        except sqlite3.OperationalError as exc:  # the table is created with the first write
            if "no such table" in str(exc):
                return []
            raise

    def _max_rowid(self, coll: str) -> int:
        conn = self._conn(coll)
        if conn is None:
            return 0
        try:
            row = conn.execute("SELECT max(rowid) FROM documents").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0] or 0)

    def poll(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for coll in TAILED:
            if coll not in self._last:
                start = 0
                if coll == "predictions":
                    start = max(0, self._max_rowid(coll) - PREDICTION_BACKLOG)
                self._last[coll] = start
            after = self._last[coll]
            if coll == "predictions" and after > 0:
                after = max(0, after - REREAD_PREDICTIONS)  # pick up realised prices
            rows = self._rows(coll, after)
            if rows:
                self._last[coll] = max(self._last[coll], rows[-1][0])
            out[coll] = [bson.decode(doc, codec_options=self._codec) for _, doc in rows]
        return out

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


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
            ts, seen = self._cursor.get(coll, (-1, set()))
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
