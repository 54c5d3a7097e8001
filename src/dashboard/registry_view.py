"""Model versions (with how each became champion, the gate's reason and metrics) and the latest
drift check, read from the MLflow registry. MLflow is slow to import, holds ~150 MB once imported
(pandas, scipy, SQLAlchemy) and may be away: the view is read by a short-lived child process
(:mod:`cryptoarena.dashboard.registry_read`, from a worker thread), cached, and says why when it
cannot be read or did not answer within ``READ_TIMEOUT_S``. The cache is read again when the
registry's SQLite file changes (a new version must show on the next page load), else every
``TTL_S`` (a server: nothing cheap tells that it changed; a SQLite file: every
``SQLITE_TTL_S``, in case two writes fell in one mtime tick)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from datetime import UTC, datetime

from cryptoarena.config import Settings, sqlite_db_path
from cryptoarena.dashboard import child_json
from cryptoarena.dashboard import schemas as s
from cryptoarena.model.champions import ChampionChange

logger = logging.getLogger(__name__)

# A read costs ~5 s of CPU (a child importing MLflow), more under load: promotions are rare.
TTL_S = 120.0
SQLITE_TTL_S = 900.0
# A registry that does not answer (a stuck tracking server) or a machine so loaded that MLflow
# does not even import: the read is stopped and the page says so (a read took 35 s at load 17).
READ_TIMEOUT_S = 120.0
# A training run writes its metrics every epoch: after a change, at most one read per gap.
CHANGE_GAP_S = 2.0
# How long the Model page's request waits for the read after a change, so that the first request
# after a new version shows it (issue #23): the child takes ~8 s on this 2-core machine at load
# ~10 (it imports MLflow each time). Longer, the answer says pending and the page asks again.
PAGE_WAIT_S = 30.0

View = tuple[list[s.ModelVersion], s.DriftStatus | None, str | None]
Stamp = tuple[tuple[int, int] | None, ...]


class RegistryView:
    def __init__(
        self,
        settings: Settings,
        *,
        change_gap_s: float = CHANGE_GAP_S,
        timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self._uri = settings.mlflow.tracking_uri
        self._experiment = settings.mlflow.experiment
        self.name = settings.serving.model_name
        self._ui = (settings.dashboard.mlflow_ui_url or "").rstrip("/")
        db = sqlite_db_path(self._uri)
        # SQLite writes land in the database or its journal files: any of them changing is news.
        ends = ("", "-wal", "-journal")
        self._files = [] if db is None else [db.with_name(db.name + e) for e in ends]
        self._gap = change_gap_s
        self._ttl = SQLITE_TTL_S if self._files else TTL_S
        self._timeout = timeout_s
        self._child: subprocess.Popen[str] | None = None  # the read under way
        self._stopped = False
        self._lock = threading.Lock()
        self._done = threading.Event()  # set while no read is under way
        self._done.set()
        self._value: tuple[float, Stamp, View] = (0.0, self._stamp(), ([], None, None))
        self._changes: list[ChampionChange] = []  # every move of @champion (season events)
        self._refreshing = False
        self.read_once = False  # False until the first read finished (the page says "reading")

    def _stamp(self) -> Stamp:
        """The registry files' (mtime, size): a cheap fingerprint of a SQLite registry."""
        out: list[tuple[int, int] | None] = []
        for f in self._files:
            try:
                st = os.stat(f)
            except OSError:
                out.append(None)
            else:
                out.append((st.st_mtime_ns, st.st_size))
        return tuple(out)

    def get(self, wait_s: float = 0.0) -> View:
        """The cached view. Read again in the background when it is older than its TTL, or when
        the registry changed since it was read: then wait up to ``wait_s`` for the new read, so
        the first page load after a new version shows it."""
        with self._lock:
            at, stamp, value = self._value
            age = time.monotonic() - at
            changed = self._stamp() != stamp and age > self._gap
            due = changed or age > self._ttl
            if due and not self._refreshing and not self._stopped:
                self._refreshing = True
                self._done.clear()
                threading.Thread(
                    target=self._refresh, name="dashboard-registry", daemon=True
                ).start()
        # (Before the first read there is nothing stale to replace: the page says "reading".)
        if changed and self.read_once and wait_s > 0 and self._done.wait(wait_s):
            with self._lock:
                value = self._value[2]
        return value

    def stop(self, timeout_s: float) -> bool:
        """End a read under way (its child is killed: a stop does not wait for a slow registry)
        and wait for its thread; False when it still runs after ``timeout_s``."""
        with self._lock:
            self._stopped = True
            if self._child is not None:
                self._child.kill()
        return self._done.wait(timeout_s)

    def champions(self) -> tuple[list[ChampionChange], str | None, bool]:
        """The cached champion changes of the served model, why they are missing when the
        registry is unreadable, and whether its first read is still under way (starts a refresh
        when stale, like :meth:`get`)."""
        _, _, error = self.get()
        with self._lock:
            changes, pending = list(self._changes), not self.read_once
        if pending:
            return changes, "model registry: still reading (ask again shortly)", True
        return changes, (f"model registry unreadable: {error}" if error else None), False

    def outdated(self) -> bool:
        """The registry changed since the cached read: a new read is due or under way."""
        with self._lock:
            return self._stamp() != self._value[1]

    def refresh_now(self) -> None:
        self._refresh()

    def sample(self, version: str | None, first_ns: int | None, last_ns: int | None) -> str | None:
        """In or out of sample: the run's data span against the training split of ``version``."""
        versions, _, _ = self.get()
        mv = next((v for v in versions if v.version == version), None)
        if mv is None or not mv.train_first or not mv.train_last or first_ns is None:
            return None
        try:
            lo = datetime.fromisoformat(mv.train_first).replace(tzinfo=UTC)
            hi = datetime.fromisoformat(mv.train_last).replace(tzinfo=UTC)
        except ValueError:
            return None
        first = datetime.fromtimestamp(first_ns / 1e9, UTC)
        last = datetime.fromtimestamp((last_ns or first_ns) / 1e9, UTC)
        trained = f"v{version} trained on {mv.train_first} – {mv.train_last} UTC"
        if first > hi or last < lo:
            return f"out of sample ({trained})"
        return f"IN SAMPLE: the run trades data {trained}"

    def _refresh(self) -> None:
        stamp = self._stamp()  # before the read: a write during it is news for the next get
        try:
            value: View = (*self._read(), None)
        except RegistryUnreadable as exc:  # the registry is optional for the dashboard
            # A read a stop ended is no news for whoever reads the log.
            log = logger.info if self._stopped else logger.warning
            log("dashboard: MLflow registry unreadable: %s", exc)
            value = ([], None, str(exc)[:300])
        except Exception as exc:
            logger.warning("dashboard: MLflow registry unreadable: %s", exc, exc_info=True)
            value = ([], None, f"{type(exc).__name__}: {exc}"[:300])
        if self._files and stamp[0] is None:
            # The read created the database (MLflow makes its schema on a first visit): that
            # write is the read's own, not news that would make the next page wait for another.
            stamp = self._stamp()
        with self._lock:
            self._value = (time.monotonic(), stamp, value)
            self._refreshing = False
            self.read_once = True
            self._done.set()

    def _read(self) -> tuple[list[s.ModelVersion], s.DriftStatus | None]:
        request = {"uri": self._uri, "experiment": self._experiment, "name": self.name,
                   "ui": self._ui}  # fmt: skip
        child = child_json.start("cryptoarena.dashboard.registry_read")
        with self._lock:
            self._child = child
            if self._stopped:  # stop() came before the child existed
                child.kill()
        try:
            out, err = child.communicate(json.dumps(request), timeout=self._timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise RegistryUnreadable(
                f"no answer within {self._timeout:g} s (the read was stopped; asked again "
                f"in {self._ttl:g} s)"
            ) from None
        finally:
            with self._lock:
                self._child = None
        if self._stopped:
            raise RegistryUnreadable("the dashboard stopped during the read")
        if child.returncode != 0:
            last = (err.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
            raise RegistryUnreadable(f"the registry reader failed: {last}")
        answer = json.loads(out)
        if "error" in answer:
            raise RegistryUnreadable(answer["error"])
        changes = [ChampionChange(**c) for c in answer["changes"]]
        with self._lock:
            self._changes = changes
        versions = [s.ModelVersion.model_validate(v) for v in answer["versions"]]
        drift = answer["drift"]
        return versions, None if drift is None else s.DriftStatus.model_validate(drift)


class RegistryUnreadable(Exception):
    """Why the registry could not be read, in words for the Model page."""
