"""The journal's database thread: batches queued writes, spills on outage, replays in order.

All of a writer's database work (writes and reads) happens on this one thread: a single owner
keeps writes in recording order. Read-only journals use :class:`Reader` (no thread).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from cryptoarena.trading.journal import store
from cryptoarena.trading.journal.spill import Op, SpillLog
from pymongo.errors import ConnectionFailure as PyMongoConnectionFailure

logger = logging.getLogger(__name__)

_WAKE = object()


@dataclass(frozen=True)
class WriterConfig:
    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval_s: float = 0.05
    retry_initial_s: float = 0.25
    retry_max_s: float = 5.0
    # Gather writes this long after the first one before committing them together, unless
    # a flush/sync/read waits (then at once): fewer, larger transactions at a trickle.
    linger_s: float = 0.02
    # A full queue: wait this long for room before spilling (0: never wait, the live default;
    # the bulk path waits, bounding a backtest's memory instead of spilling to disk).
    block_s: float = 0.0


class Writer(threading.Thread):
    def __init__(
        self,
        connect: Callable[[], Any],
        database: str,
        spill: SpillLog,
        config: WriterConfig,
    ) -> None:
        super().__init__(name="journal-writer", daemon=True)
        self._connect_fn = connect
        self._database = database
        self.spill = spill
        self.cfg = config
        self.lock = threading.Lock()  # seq assignment + routing (queue or overflow)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=config.queue_size)
        self._calls: deque[tuple[Callable[[Any], Any], Future[Any]]] = deque()
        self._progress = threading.Condition()
        self.seq = 0
        self.durable_seq = 0  # every op up to here is in the database or the fsync'd spill
        self.db_seq = 0  # every op up to here is in the database
        self._overflow = False
        self._overflow_last = 0
        self._client: Any = None
        self._db: Any = None
        self.healthy = False
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._backoff = config.retry_initial_s
        self._stop_deadline: float | None = None
        self._waiters = 0  # threads in wait_for (flush/sync): no gathering while > 0
        self._kick = threading.Event()  # ends a gathering wait early (waiters, reads, stop)
        self.ready = threading.Event()

    # -- caller side ----------------------------------------------------------------------
    def backlog(self) -> int:
        """Ops queued for this thread and not yet taken (approximate, as ``qsize``)."""
        return self._queue.qsize()

    def submit(self, build: Callable[[int], Op]) -> Op:
        """Assign the next seq and enqueue; when the queue is full, spill (never drop)."""
        with self.lock:
            self.seq += 1
            op = build(self.seq)
            self._put(op)
            return op

    def submit_many(self, build: Callable[[int], list[Op]], count: int) -> list[Op]:
        """Like :meth:`submit` for ``count`` ops at once (seqs ``first..first+count-1``): one
        lock and one queue item for the whole chunk."""
        with self.lock:
            first = self.seq + 1
            self.seq += count
            ops = build(first)
            if ops:
                self._put(ops)
            return ops

    def reserve(self, count: int) -> int:
        """Assign ``count`` seqs now (the first is returned) for ops enqueued later, in order,
        with :meth:`enqueue` (a buffering producer; it must enqueue them before a flush)."""
        with self.lock:
            first = self.seq + 1
            self.seq += count
            return first

    def enqueue(self, ops: list[Op]) -> None:
        """Enqueue ops built on :meth:`reserve`'d seqs, as one queue item (spill if full)."""
        if not ops:
            return
        with self.lock:
            self._put(ops)

    def _put(self, item: Op | list[Op]) -> None:
        """Under the lock: one queue item (an op or a chunk); once the queue has been full,
        everything goes to the overflow spill, in order (never dropped)."""
        if not self._overflow:
            try:
                if self.cfg.block_s > 0 and self.is_alive():
                    self._queue.put(item, timeout=self.cfg.block_s)
                else:
                    self._queue.put_nowait(item)
                return
            except queue.Full:
                self._overflow = True
                logger.warning("journal: queue full, spilling to %s", self.spill.overflow_path)
        ops = item if isinstance(item, list) else [item]
        for op in ops:
            self.spill.append_overflow(op)
        self._overflow_last = ops[-1]["n"]

    def call(self, fn: Callable[[Any], Any], timeout_s: float) -> Any:
        fut: Future[Any] = Future()
        self._calls.append((fn, fut))
        self._wake()
        return fut.result(timeout=timeout_s)

    def wait_for(self, attr: str, target: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._progress:
            if getattr(self, attr) >= target:
                return True
            self._waiters += 1  # the writer stops gathering a batch and writes at once
            try:
                self._wake()
                while getattr(self, attr) < target:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self.is_alive():
                        return getattr(self, attr) >= target
                    self._progress.wait(min(left, 0.5))
            finally:
                self._waiters -= 1
        return True

    def stop(self, timeout_s: float) -> None:
        self._stop_deadline = time.monotonic() + timeout_s
        self._wake()
        self.join(timeout_s + 5.0)

    def _wake(self) -> None:
        self._kick.set()
        # When full, the writer is busy and looks at its calls after this batch anyway.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_WAKE)

    # -- writer thread --------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._ensure_db()
            self._replay()
        finally:
            self.ready.set()
        while True:
            batch = self._take_batch()
            self._run_calls()
            if batch:
                self._write(batch)
            self._merge_overflow()
            self._replay()
            if self._overflow:
                self.spill.sync_overflow()  # callers only write it to the OS
            if self._stop_deadline is not None and self._queue.empty() and not self._overflow:
                while self.spill.pending() and time.monotonic() < self._stop_deadline:
                    time.sleep(min(0.1, max(0.0, self._retry_at - time.monotonic())))
                    self._replay()
                self._run_calls()
                break
        self._close_client()

    def _take_batch(self) -> list[Op]:
        timeout = 0.0 if self._stop_deadline is not None else self.cfg.flush_interval_s
        try:
            first = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            return []
        batch: list[Op] = []
        _add(batch, first)
        self._drain(batch)
        # A trickle: gather for linger_s more (one commit for many events) unless someone
        # waits (flush, sync, a read, stop). The wait is on _kick, which producers never set:
        # waking this thread for every queued event would hand it the GIL every time.
        self._kick.clear()
        if len(batch) < self.cfg.batch_size and not self._busy():
            self._kick.wait(self.cfg.linger_s)
            self._drain(batch)
        return batch

    def _drain(self, batch: list[Op]) -> None:
        while len(batch) < self.cfg.batch_size:
            try:
                _add(batch, self._queue.get_nowait())
            except queue.Empty:
                return

    def _busy(self) -> bool:
        return bool(self._waiters or self._calls or self._stop_deadline is not None)

    def _write(self, batch: list[Op]) -> None:
        if not self.spill.pending() and self._ensure_db():
            try:
                store.apply(self._db, batch, self.spill)
            except Exception as exc:
                self._outage(exc)
            else:
                self._advance(durable=batch[-1]["n"], db=batch[-1]["n"])
                return
        self._spill(batch)

    def _spill(self, batch: list[Op]) -> None:
        while True:
            try:
                self.spill.append(batch)
                break
            except OSError as exc:  # disk full or gone: keep the batch, retry
                logger.error("journal: cannot write the spill %s: %s", self.spill.spill_path, exc)
                time.sleep(1.0)
        self._advance(durable=batch[-1]["n"])

    def _merge_overflow(self) -> None:
        if not self._overflow:
            return
        with self.lock:
            if not self._queue.empty():
                return  # older ops still queued: they go first
            # Only the cheap part under the lock (callers wait for it): close and rename.
            self.spill.detach_overflow()
            self._overflow = False
            last = self._overflow_last
        # Newer records queue meanwhile; this thread writes them only after the merge.
        moved = self.spill.merge_detached()
        logger.info("journal: merged %d overflowed events behind the spill", moved)
        self._advance(durable=last)

    def _replay(self) -> None:
        """Replay the spill into the database, oldest first, if it is time to try."""
        if not self.spill.pending() or time.monotonic() < self._retry_at:
            return
        if not self._ensure_db():
            return
        replayed = 0
        while True:
            before = self.spill.offset
            ops, offset = self.spill.read_next(self.cfg.batch_size)
            if ops:
                try:
                    store.apply(self._db, ops, self.spill)
                except Exception as exc:
                    self._outage(exc)
                    return
                replayed += len(ops)
            self.spill.offset = offset
            self._run_calls()
            if offset != before:
                continue
            # The spill is drained; newer queued ops must follow it, so append them first.
            batch = self._take_now()
            if batch:
                self._spill(batch)
                continue
            if self._overflow:
                return  # merged on the next loop, then replayed
            self.spill.clear()
            break
        with self._progress:
            self.db_seq = self.durable_seq
            self._progress.notify_all()
        if replayed:
            logger.info("journal: replayed %d spilled writes into the database", replayed)
        self._recovered()

    def _take_now(self) -> list[Op]:
        batch: list[Op] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch
            _add(batch, item)

    def _run_calls(self) -> None:
        while self._calls:
            fn, fut = self._calls.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                if not self._ensure_db():
                    raise ConnectionError(f"journal database unavailable: {self.last_error}")
                fut.set_result(fn(self._db))
            except Exception as exc:
                fut.set_exception(exc)

    def _advance(self, *, durable: int, db: int | None = None) -> None:
        with self._progress:
            self.durable_seq = max(self.durable_seq, durable)
            if db is not None:
                self.db_seq = max(self.db_seq, db)
            self._progress.notify_all()

    # -- connection and health ------------------------------------------------------------
    def _ensure_db(self) -> bool:
        if self._db is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._client = self._connect_fn()
            db = self._client[self._database]
            store.ensure_indexes(db)
            self._db = db
            self.healthy = True
        except Exception as exc:
            self._close_client()
            self._outage(exc)
            return False
        return True

    def _outage(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.healthy or self._backoff == self.cfg.retry_initial_s:
            logger.warning("journal: database unavailable, spilling (%s)", self.last_error)
        self.healthy = False
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.cfg.retry_max_s)
        # A closed or broken client is rebuilt on the next attempt.
        self._close_client()

    def _recovered(self) -> None:
        if self.last_error is not None:
            logger.info("journal: database available again")
        self.last_error = None
        self._backoff = self.cfg.retry_initial_s

    def _close_client(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:
                logger.debug("journal: closing the client failed: %s", exc)


def _add(batch: list[Op], item: Any) -> None:
    """Queue items are one op, a chunk of ops (``submit_many``) or the wake-up marker."""
    if type(item) is list:
        batch.extend(item)
    elif item is not _WAKE:
        batch.append(item)


class Reader:
    """A read-only journal's database side: no thread, no queue, no spill replay. Reads run in
    the caller's thread, side by side (the embedded store opens its file read-only)."""

    seq = 0
    healthy = True
    last_error: str | None = None

    def __init__(self, connect: Callable[[], Any], database: str, spill: SpillLog) -> None:
        self._connect_fn = connect
        self._database = database
        self.spill = spill
        self._client: Any = None
        self._db: Any = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[Any], Any], timeout_s: float) -> Any:
        try:
            with self._lock:  # connecting only: a long read must not queue the short ones
                if self._db is None:
                    self._client = self._connect_fn()
                    self._db = self._client[self._database]
                db = self._db
            # pymongo's client is thread-safe; a read-only embedded store reads on a
            # connection per read under way (docstore.Database.reading), so reads interleave.
            return fn(db)
        except (PyMongoConnectionFailure, sqlite3.OperationalError) as exc:
            self.close()
            raise ConnectionError(f"journal database unavailable: {exc}") from exc

    def submit(self, build: Callable[[int], Op]) -> Op:
        raise RuntimeError("a read-only journal never writes")

    def submit_many(self, build: Callable[[int], list[Op]], count: int) -> list[Op]:
        raise RuntimeError("a read-only journal never writes")

    def reserve(self, count: int) -> int:
        raise RuntimeError("a read-only journal never writes")

    def enqueue(self, ops: list[Op]) -> None:
        raise RuntimeError("a read-only journal never writes")

    def wait_for(self, attr: str, target: int, timeout_s: float) -> bool:
        return True

    def backlog(self) -> int:
        return 0  # nothing is ever queued

    def stop(self, timeout_s: float) -> None:
        with self._lock:
            self.close()

    def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
