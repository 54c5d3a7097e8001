"""Model versions (with how each became champion, the gate's reason and metrics) and the latest
drift check, read from the MLflow registry. MLflow is slow to import and may be away: the view is
built in a worker thread, cached, and says why when it cannot be read. The cache is read again
when the registry's SQLite file changes (a new version must show on the next page load), else
every ``TTL_S`` (a server: nothing cheap tells that it changed)."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from cryptoarena.config import Settings, sqlite_db_path
from cryptoarena.dashboard import schemas as s
from cryptoarena.model.champions import ChampionChange, champion_changes

logger = logging.getLogger(__name__)

# Reading the registry costs ~1 s of CPU (MLflow): promotions are rare, so not often.
TTL_S = 120.0
# A training run writes its metrics every epoch: after a change, at most one read per gap.
CHANGE_GAP_S = 2.0
# How long the Model page's request waits for the read after a change (~1 s; more when busy:
# then the answer says pending and the page asks again).
PAGE_WAIT_S = 8.0

View = tuple[list[s.ModelVersion], s.DriftStatus | None, str | None]
Stamp = tuple[tuple[int, int] | None, ...]


class RegistryView:
    def __init__(self, settings: Settings, *, change_gap_s: float = CHANGE_GAP_S) -> None:
        self._uri = settings.mlflow.tracking_uri
        self._experiment = settings.mlflow.experiment
        self.name = settings.serving.model_name
        self._ui = (settings.dashboard.mlflow_ui_url or "").rstrip("/")
        db = sqlite_db_path(self._uri)
        # SQLite writes land in the database or its journal files: any of them changing is news.
        ends = ("", "-wal", "-journal")
        self._files = [] if db is None else [db.with_name(db.name + e) for e in ends]
        self._gap = change_gap_s
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
        """The cached view. Read again in the background when it is older than TTL_S, or when
        the registry changed since it was read: then wait up to ``wait_s`` for the new read, so
        the first page load after a new version shows it."""
        with self._lock:
            at, stamp, value = self._value
            age = time.monotonic() - at
            changed = self._stamp() != stamp and age > self._gap
            if (changed or age > TTL_S) and not self._refreshing:
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

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no read is under way (a stop must not close what a read is using); False
        when one still runs after ``timeout_s``."""
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
        except Exception as exc:  # the registry is optional for the dashboard
            logger.warning("dashboard: MLflow registry unreadable: %s", exc)
            value = ([], None, f"{type(exc).__name__}: {exc}"[:300])
        with self._lock:
            self._value = (time.monotonic(), stamp, value)
            self._refreshing = False
            self.read_once = True
            self._done.set()

    def _read(self) -> tuple[list[s.ModelVersion], s.DriftStatus | None]:
        from cryptoarena.model.champions import PROMOTION_TAG
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self._uri, registry_uri=self._uri)
        versions: list[s.ModelVersion] = []
        # search_model_versions leaves the aliases out: take them from the registered model.
        try:
            alias_map: dict[str, str] = dict(client.get_registered_model(self.name).aliases or {})
        except Exception:  # no such model yet
            alias_map = {}
        aliases: dict[str, list[str]] = {}
        for alias, ver in sorted(alias_map.items()):
            aliases.setdefault(str(ver), []).append(alias)
        found = client.search_model_versions(f"name='{self.name}'")
        changes = champion_changes(self.name, found)
        with self._lock:
            self._changes = changes
        for mv in found:
            metrics: dict[str, float] = {}
            run_tags: dict[str, str] = {}
            if mv.run_id:
                try:
                    data = client.get_run(mv.run_id).data
                    metrics, run_tags = dict(data.metrics), dict(data.tags)
                except Exception:
                    metrics = {}
            tags: dict[str, Any] = dict(mv.tags or {})
            versions.append(
                s.ModelVersion(
                    version=str(mv.version),
                    aliases=aliases.get(str(mv.version), []),
                    created_ms=int(mv.creation_timestamp) if mv.creation_timestamp else None,
                    gate=tags.get("gate"),
                    promotion=tags.get(PROMOTION_TAG),
                    promotion_message=crowning_message(tags),
                    metrics={k: float(v) for k, v in metrics.items()},
                    run_id=mv.run_id,
                    train_first=run_tags.get("data.train_first"),
                    train_last=run_tags.get("data.train_last"),
                )
            )
        versions.sort(key=lambda v: int(v.version) if v.version.isdigit() else 0, reverse=True)
        return versions, self._drift(client)

    def _drift(self, client: Any) -> s.DriftStatus | None:
        exp = client.get_experiment_by_name(self._experiment)
        if exp is None:
            return None
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string="tags.kind = 'drift'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs:
            return None
        run = runs[0]
        tags = run.data.tags
        retrain = tags.get("drift.should_retrain")
        return s.DriftStatus(
            checked_ms=run.info.start_time,
            model_version=tags.get("model.version"),
            should_retrain=None if retrain is None else retrain == "True",
            reasons=tags.get("drift.reasons"),
            run_id=run.info.run_id,
            # The MLflow UI's page for this run (ARENA_DASHBOARD__MLFLOW_UI_URL), if one is set.
            run_url=(
                f"{self._ui}/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}"
                if self._ui
                else None
            ),
        )


def crowning_message(tags: dict[str, Any]) -> str | None:
    """How a version became @champion, from its registry tags: the message recorded when it was
    crowned, else (versions crowned before that tag existed) the same sentence rebuilt from how
    and the gate's verdict; None for a version never crowned."""
    from cryptoarena.model.champions import (
        PROMOTED_BY,
        PROMOTION_MESSAGE_TAG,
        PROMOTION_TAG,
        GateDecision,
        promotion_message,
    )

    how = tags.get(PROMOTION_TAG)
    if how not in PROMOTED_BY:
        return None
    if tags.get(PROMOTION_MESSAGE_TAG):
        return str(tags[PROMOTION_MESSAGE_TAG])
    decision = GateDecision(tags.get("gate.verdict") == "promote", str(tags.get("gate") or "—"))
    return promotion_message(decision, how)
