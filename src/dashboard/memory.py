"""The dashboard's in-memory read model of the journal, fed by a :mod:`tail`: runs, equity
curves, fills, recent forecasts and risk events per run. Views read from here, so no API call
scans the journal (the leaderboard is ``arena report``'s own report, built on the journal in
the background: see :mod:`~cryptoarena.dashboard.reader`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptoarena.trading.results.source import wall_ns

logger = logging.getLogger(__name__)

FORECASTS_KEPT = 3_600  # per run: the newest hour at one forecast a second
EQUITY_FIELDS = ("strategy", "ts_ns", "seq", "equity", "qty", "mark")


@dataclass
class RunData:
    run_id: str
    events: list[dict[str, Any]] = field(default_factory=list)  # runs docs, in time order
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # light equity docs
    last_equity: dict[str, dict[str, Any]] = field(default_factory=dict)  # full, per strategy
    fills: list[dict[str, Any]] = field(default_factory=list)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id, insertion order
    risk: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0  # bumped on every new equity snapshot
    pred_version: int = 0  # bumped on every new or updated forecast

    @property
    def started(self) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("event") == "started"), None)

    def curve(self, strategy: str) -> list[dict[str, Any]]:
        """The strategy's equity docs in time order, the last one complete (the report reads
        the book's counters from it)."""
        light = self.curves.get(strategy, [])
        if not light:
            return []
        return [*light[:-1], self.last_equity.get(strategy, light[-1])]


def _key(doc: Mapping[str, Any]) -> tuple[int, int]:
    return (int(doc.get("ts_ns") or 0), int(doc.get("seq") or 0))


def _append(items: list[dict[str, Any]], doc: dict[str, Any], dirty: list[list[Any]]) -> None:
    """Append; a list that went out of time order is sorted once after the batch (journal
    order is nearly always time order, and timsort is linear on nearly sorted lists)."""
    if items and _key(items[-1]) > _key(doc) and not any(d is items for d in dirty):
        dirty.append(items)
    items.append(doc)


class MemoryStore:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.runs: dict[str, RunData] = {}
        self._seen: set[str] = set()
        # The most recently started run, by the wall clock of its start (as `arena report`:
        # two backtests of the same day replay the same market times).
        self.latest: str | None = None
        self._latest_key: tuple[int, int, int] = (-1, -1, -1)

    def run(self, run_id: str) -> RunData:
        data = self.runs.get(run_id)
        if data is None:
            data = self.runs[run_id] = RunData(run_id)
        return data

    def get(self, run_id: str) -> RunData | None:
        return self.runs.get(run_id)

    def apply(self, batch: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        """Take new documents; returns the (collection, doc) pairs that were new."""
        new: list[tuple[str, dict[str, Any]]] = []
        dirty: list[list[Any]] = []
        with self.lock:
            for coll in ("runs", "equity", "fills", "predictions", "risk_events"):
                for doc in batch.get(coll, ()):
                    eid = str(doc.get("_id"))
                    run_id = doc.get("run_id")
                    if not run_id:
                        continue
                    data = self.run(str(run_id))
                    if coll == "predictions":
                        fresh = eid not in data.predictions
                        data.predictions[eid] = _prediction(doc)
                        data.pred_version += 1
                        if len(data.predictions) > FORECASTS_KEPT:
                            data.predictions.pop(next(iter(data.predictions)))
                        if fresh:
                            new.append((coll, doc))
                        continue
                    if eid in self._seen:
                        continue
                    self._seen.add(eid)
                    new.append((coll, doc))
                    if coll == "runs":
                        _append(data.events, doc, dirty)
                        if doc.get("event") == "started":
                            key = (wall_ns(doc) or 0, int(doc.get("ts_ns") or 0),
                                   int(doc.get("seq") or 0))  # fmt: skip
                            if key >= self._latest_key:
                                self._latest_key, self.latest = key, str(run_id)
                    elif coll == "equity":
                        name = str(doc["strategy"])
                        light = {k: doc.get(k) for k in EQUITY_FIELDS}
                        _append(data.curves.setdefault(name, []), light, dirty)
                        last = data.last_equity.get(name)
                        if last is None or _key(doc) >= _key(last):
                            data.last_equity[name] = doc
                        data.version += 1
                    elif coll == "fills":
                        _append(data.fills, doc, dirty)
                    else:
                        _append(data.risk, doc, dirty)
            for items in dirty:
                items.sort(key=_key)
        return new


def _prediction(doc: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("ts_ns", "seq", "base_price", "predicted_price", "log_returns", "target_ts_ns",
            "realised_price", "model_version")  # fmt: skip
    return {k: doc.get(k) for k in keep}
