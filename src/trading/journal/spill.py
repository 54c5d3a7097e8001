"""The spill: append-only JSON-lines files that hold journal writes while the database is away.

``<name>.spill.jsonl`` is written only by the journal's writer thread, in order, and fsync'd
before an event counts as durable. ``<name>.overflow.jsonl`` takes events from callers when the
in-memory queue is full (never dropped: written to the OS at once, fsync'd by the writer); the
writer merges it behind the spill once the queue has drained, so the spill stays in recording
order. ``<name>.rejects.jsonl`` keeps writes the
database refused for good (e.g. a duplicate client order id), so nothing vanishes silently.
A ``<name>.lock`` file (flock) makes the journal single-writer across processes.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO

from bson import json_util
from bson.json_util import JSONMode, JSONOptions

logger = logging.getLogger(__name__)

Op = dict[str, Any]
JSON_OPTIONS = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True, tzinfo=UTC)


class JournalLockedError(RuntimeError):
    """Another process already writes this journal (one writer process per store)."""


def encode(op: Op) -> bytes:
    return (json_util.dumps(op, json_options=JSON_OPTIONS) + "\n").encode()


def decode(line: bytes) -> Op:
    op = json_util.loads(line.decode(), json_options=JSON_OPTIONS)
    if not isinstance(op, dict):
        raise ValueError("spill line is not an object")
    return op


def op_key(op: Op) -> tuple[int, int]:
    return int(op["s"]), int(op["n"])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append(path: Path, lines: Iterable[bytes]) -> None:
    created = not path.exists()
    with path.open("ab") as fh:
        fh.write(b"".join(lines))
        fh.flush()
        os.fsync(fh.fileno())
    if created:
        _fsync_dir(path.parent)


class SpillLog:
    """The spill of one store: ``name`` is derived from the store's identity (``owner``), so a
    MongoDB store's spill is never replayed into the embedded store or another database."""

    def __init__(self, directory: Path, name: str, *, owner: str = "", create: bool = True) -> None:
        self.dir = directory
        self.name = name
        self.owner = owner
        if create:
            self.dir.mkdir(parents=True, exist_ok=True)
            if owner:  # say whose files these are (no credentials in an identity)
                owner_path = directory / f"{name}.store"
                if not owner_path.exists():
                    owner_path.write_text(owner + "\n")
        self.spill_path = directory / f"{name}.spill.jsonl"
        self.overflow_path = directory / f"{name}.overflow.jsonl"
        self.merging_path = directory / f"{name}.overflow-merging.jsonl"
        self.rejects_path = directory / f"{name}.rejects.jsonl"
        self._lock_path = directory / f"{name}.lock"
        self._lock_fh: BinaryIO | None = None
        self._overflow_fh: BinaryIO | None = None
        self.offset = 0  # bytes of the spill already replayed into the database

    # -- process lock ---------------------------------------------------------------------
    def lock(self) -> None:
        fh = self._lock_path.open("ab")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise JournalLockedError(
                f"journal spill {self.spill_path} is in use by another process"
            ) from None
        self._lock_fh = fh

    def unlock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def warn_foreign(self, database: str) -> None:
        """An older version kept one spill per database for every store: its owner is unknown,
        so it is never replayed here; say where it is."""
        legacy = self.dir / f"{database}.spill.jsonl"
        if legacy.exists() and legacy.stat().st_size:
            logger.warning(
                "journal: %s was left by an older version and may belong to another store; "
                "it is not replayed (this store spills to %s)",
                legacy,
                self.spill_path,
            )

    # -- writing --------------------------------------------------------------------------
    def append(self, ops: list[Op]) -> None:
        """Writer thread only: ops are durable when this returns."""
        _append(self.spill_path, (encode(op) for op in ops))

    def append_overflow(self, op: Op) -> None:
        """Caller thread, queue full: in the OS when this returns (a process crash keeps it);
        fsync'd by :meth:`sync_overflow` (the writer, every loop) and before any merge."""
        if self._overflow_fh is None:
            created = not self.overflow_path.exists()
            self._overflow_fh = self.overflow_path.open("ab")
            if created:
                _fsync_dir(self.dir)
        self._overflow_fh.write(encode(op))
        self._overflow_fh.flush()

    def sync_overflow(self) -> None:
        if self._overflow_fh is not None:
            os.fsync(self._overflow_fh.fileno())

    def _close_overflow(self) -> None:
        if self._overflow_fh is not None:
            self._overflow_fh.flush()
            os.fsync(self._overflow_fh.fileno())
            self._overflow_fh.close()
            self._overflow_fh = None

    def reject(self, op: Op, reason: str) -> None:
        logger.error("journal: database refused %s %s: %s", op.get("c"), op.get("id"), reason)
        _append(self.rejects_path, [encode({**op, "reason": reason})])

    def detach_overflow(self) -> None:
        """Close the overflow file and rename it aside (cheap: callers wait for this, under the
        writer's lock); later records start a new overflow file. :meth:`merge_detached` then
        moves the detached file behind the spill without holding up callers."""
        self._close_overflow()
        if self.overflow_path.exists() and not self.merging_path.exists():
            os.replace(self.overflow_path, self.merging_path)
            _fsync_dir(self.dir)

    def merge_detached(self) -> int:
        """Writer thread: move the detached overflow behind the spill, skipping ops already
        there (a crash between the copy and the delete). Never touches the live overflow file
        (callers may be writing it)."""
        if not self.merging_path.exists():
            return 0
        seen = {op_key(op) for op in self._read_all(self.spill_path)}
        extra = [op for op in self._read_all(self.merging_path) if op_key(op) not in seen]
        if extra:
            self.append(extra)
        self.merging_path.unlink()
        _fsync_dir(self.dir)
        return len(extra)

    def merge_overflow(self) -> int:
        """At open (no callers yet): a detached overflow, then the overflow, behind the spill."""
        moved = self.merge_detached()
        self.detach_overflow()
        return moved + self.merge_detached()

    # -- reading --------------------------------------------------------------------------
    def pending(self) -> bool:
        try:
            return self.spill_path.stat().st_size > self.offset
        except FileNotFoundError:
            return False

    def read_next(self, max_ops: int) -> tuple[list[Op], int]:
        """Up to ``max_ops`` complete lines after ``offset``; returns them and the new offset."""
        ops: list[Op] = []
        offset = self.offset
        try:
            fh = self.spill_path.open("rb")
        except FileNotFoundError:
            return ops, offset
        with fh:
            fh.seek(offset)
            while len(ops) < max_ops:
                line = fh.readline()
                if not line.endswith(b"\n"):
                    break  # end of file (a torn tail was trimmed at open)
                offset += len(line)
                op = self._decode_or_keep(line)
                if op is not None:
                    ops.append(op)
        return ops, offset

    def clear(self) -> None:
        """Writer thread: everything in the spill is in the database now."""
        self.spill_path.unlink(missing_ok=True)
        _fsync_dir(self.dir)
        self.offset = 0

    def recover(self) -> None:
        """At open: trim a torn last line (never acknowledged) and merge a leftover overflow."""
        for path in (self.spill_path, self.merging_path, self.overflow_path):
            if not path.exists():
                continue
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                logger.warning("journal: trimming %d torn bytes from %s", len(data) - end, path)
                with path.open("r+b") as fh:
                    fh.truncate(end)
                    os.fsync(fh.fileno())
        self.merge_overflow()
        self.offset = 0

    def _read_all(self, path: Path) -> list[Op]:
        if not path.exists():
            return []
        with path.open("rb") as fh:
            return [
                op
                for line in fh
                if line.endswith(b"\n") and (op := self._decode_or_keep(line)) is not None
            ]

    def _decode_or_keep(self, line: bytes) -> Op | None:
        try:
            return decode(line)
        except (ValueError, KeyError) as exc:
            logger.error("journal: unreadable spill line kept in %s: %s", self.rejects_path, exc)
            _append(self.rejects_path, [line])
            return None
