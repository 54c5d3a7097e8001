"""The dashboard's in-memory read model of the journal: per run, what the views need and no
more, so the dashboard's memory stays flat however long a run or a season lasts.

Per run and strategy the equity curve is kept in tiers (:class:`TieredCurve`): the raw
snapshots of the newest hour, the last snapshot of each minute for the two days before, the last
of each hour beyond (a 30-day run of ten strategies is ~45k small tuples). Fill markouts: per
strategy counts and sums only (:class:`~cryptoarena.trading.results.markouts.MarkoutStats`),
never the records. Fills and risk events:
the newest few hundred per strategy and run, with their counts (older pages are read from the
journal's indexes on demand); forecasts: the newest hour. A run's history is read from the
journal when the run is first asked for (the ``equity_minute`` read model day by day, the raw
snapshots of the last hour, the newest fills, risk events and forecasts: indexed windows
only), then the tail's new documents keep it current. At most ``RUNS_KEPT`` runs are held
(the latest always; the least recently used others are dropped and read again when asked).

The leaderboard is ``arena report``'s own report, built on the journal in the background
(see :mod:`~cryptoarena.dashboard.reader`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from cryptoarena.trading.results.markouts import MarkoutStats
from cryptoarena.trading.results.model import Markouts
from cryptoarena.trading.results.source import ReportJournal, wall_ns

logger = logging.getLogger(__name__)

FORECASTS_KEPT = 3_600  # per run: the newest hour at one forecast a second
FILLS_KEPT = 500  # per run and per strategy: the newest (older pages come from the journal)
RISK_KEPT = 500
RUNS_KEPT = 4  # runs held in memory (the latest always); others are read again when asked
# Documents taken per hold of the store's lock: a route waits at most one chunk (~1-3 ms)
# behind the tail, however large a poll is (a worker replaying at 100,000x writes tens of
# thousands of documents between two polls).
APPLY_CHUNK = 256
RAW_S = 3_600  # raw equity snapshots of the newest hour
MINUTES_S = 2 * 86_400  # then the last snapshot of each minute for two days; hours beyond
MINUTE_NS = 60 * 10**9
HOUR_NS = 3_600 * 10**9
DAY_NS = 86_400 * 10**9


class Point(NamedTuple):
    """One equity snapshot as the views use it (the full newest one is kept apart)."""

    ts_ns: int
    seq: int
    equity: float
    qty: float
    mark: float


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def point(doc: Mapping[str, Any]) -> Point:
    return Point(int(doc.get("ts_ns") or 0), int(doc.get("seq") or 0), _num(doc.get("equity")),
                 _num(doc.get("qty") or 0.0), _num(doc.get("mark")))  # fmt: skip


class TieredCurve:
    """A strategy's equity curve in bounded memory: raw snapshots of the newest ``RAW_S``, the
    last snapshot of each minute for ``MINUTES_S`` before that, the last of each hour beyond.
    Snapshots arrive in time order (an older or repeated one is ignored)."""

    def __init__(self) -> None:
        self.raw: deque[Point] = deque()
        self.minutes: deque[Point] = deque()
        self.hours: list[Point] = []
        self.first_ns: int | None = None
        self.count = 0  # snapshots taken in (all tiers)

    @property
    def last(self) -> Point | None:
        return self.raw[-1] if self.raw else None

    def add(self, p: Point) -> bool:
        last = self.last
        if last is not None and (p.ts_ns, p.seq) <= (last.ts_ns, last.seq):
            return False
        if self.first_ns is None:
            self.first_ns = p.ts_ns
        self.raw.append(p)
        self.count += 1
        raw_from = p.ts_ns - RAW_S * 10**9
        while self.raw[0].ts_ns < raw_from:
            _fold(self.minutes, self.raw.popleft(), MINUTE_NS)
        minutes_from = raw_from - MINUTES_S * 10**9
        while self.minutes and self.minutes[0].ts_ns < minutes_from:
            _fold(self.hours, self.minutes.popleft(), HOUR_NS)
        return True

    def __iter__(self) -> Iterator[Point]:
        yield from self.hours
        yield from self.minutes
        yield from self.raw

    def __len__(self) -> int:
        return len(self.hours) + len(self.minutes) + len(self.raw)


def _fold(tier: deque[Point] | list[Point], p: Point, bucket_ns: int) -> None:
    """Append ``p`` to a coarser tier: it replaces the tier's last point of the same bucket
    (the tier keeps the last snapshot of each bucket)."""
    if tier and tier[-1].ts_ns // bucket_ns == p.ts_ns // bucket_ns:
        tier[-1] = p
    else:
        tier.append(p)


class Recent:
    """The newest documents of one kind in a run (``kept`` per strategy and overall), their
    counts, and the ids of those kept (the tail and a run's load may overlap)."""

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self.items: deque[dict[str, Any]] = deque(maxlen=kept)
        self.by_strategy: dict[str, deque[dict[str, Any]]] = {}
        self.total = 0
        self.counts: dict[str, int] = {}
        self._ids: dict[str, None] = {}

    def add(self, doc: dict[str, Any]) -> bool:
        eid = str(doc.get("_id"))
        if eid in self._ids:
            return False
        self.remember(eid)
        self.items.append(doc)
        self.total += 1
        name = doc.get("strategy")
        if name:
            name = str(name)
            self.by_strategy.setdefault(name, deque(maxlen=self.kept)).append(doc)
            self.counts[name] = self.counts.get(name, 0) + 1
        return True

    def remember(self, eid: str) -> None:
        self._ids[eid] = None
        if len(self._ids) > 2 * self.kept:
            del self._ids[next(iter(self._ids))]

    def newest(self, strategy: str | None) -> tuple[list[dict[str, Any]], int]:
        """(kept documents oldest first, how many the run has) for ``strategy`` or all."""
        if strategy:
            return list(self.by_strategy.get(strategy, ())), self.counts.get(strategy, 0)
        return list(self.items), self.total


class MarkoutBook:
    """A run's fill markouts folded per strategy, and the ids of the newest records folded (the
    tail and a run's load may overlap): fixed size however many fills the run has."""

    IDS_KEPT = 4_000

    def __init__(self) -> None:
        self.stats: dict[str, MarkoutStats] = {}
        self._ids: dict[str, None] = {}

    def add(self, doc: Mapping[str, Any]) -> bool:
        eid = str(doc.get("_id"))
        if eid in self._ids:
            return False
        self._ids[eid] = None
        if len(self._ids) > self.IDS_KEPT:
            del self._ids[next(iter(self._ids))]
        self.stats.setdefault(str(doc.get("strategy")), MarkoutStats()).add(doc)
        return True

    def summary(self, strategy: str) -> Markouts | None:
        stats = self.stats.get(strategy)
        return None if stats is None else stats.summary()


@dataclass
class RunData:
    run_id: str
    events: list[dict[str, Any]] = field(default_factory=list)  # runs docs, in time order
    curves: dict[str, TieredCurve] = field(default_factory=dict)
    last_equity: dict[str, dict[str, Any]] = field(default_factory=dict)  # full, per strategy
    fills: Recent = field(default_factory=lambda: Recent(FILLS_KEPT))
    risk: Recent = field(default_factory=lambda: Recent(RISK_KEPT))
    markouts: MarkoutBook = field(default_factory=MarkoutBook)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id, insertion order
    newest_prediction: dict[str, Any] | None = None  # by (ts_ns, seq): asked on every status
    loaded: bool = False
    version: int = 0  # bumped on every new equity snapshot
    pred_version: int = 0  # bumped on every new or updated forecast

    @property
    def started(self) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("event") == "started"), None)

    def families(self) -> dict[str, str]:
        started = self.started or {}
        return {st["name"]: st.get("family", "?") for st in started.get("strategies", [])}

    def curve(self, strategy: str) -> list[Point]:
        return list(self.curves.get(strategy, ()))

    def add_equity(self, doc: dict[str, Any]) -> bool:
        name = str(doc["strategy"])
        if not self.curves.setdefault(name, TieredCurve()).add(point(doc)):
            return False
        self.last_equity[name] = doc
        self.version += 1
        return True

    def add_prediction(self, doc: Mapping[str, Any]) -> bool:
        eid = str(doc.get("_id"))
        fresh = eid not in self.predictions
        pred = self.predictions[eid] = _prediction(doc)
        newest = self.newest_prediction
        if newest is None or doc_key(pred) >= doc_key(newest):
            self.newest_prediction = pred
        self.pred_version += 1
        if len(self.predictions) > FORECASTS_KEPT:
            dropped = self.predictions.pop(next(iter(self.predictions)))
            if dropped is self.newest_prediction:  # only if forecasts came far out of order
                self.newest_prediction = max(self.predictions.values(), key=doc_key)
        return fresh


class ReadModelJournal(ReportJournal, Protocol):
    """What the read model reads: the report's reader, and counts."""

    def count(self, kind: str, filter: Mapping[str, Any] | None = None) -> int: ...


class MemoryStore:
    """Runs' read models. With a ``journal``, a run's history is read when it is first asked
    for (:meth:`load`) and only loaded runs take the tail's documents; without one (tests)
    every run takes every document."""

    def __init__(self, journal: ReadModelJournal | None = None, *, runs_kept: int = RUNS_KEPT):
        self.lock = threading.RLock()
        self.journal = journal
        self.runs_kept = runs_kept
        self.runs: OrderedDict[str, RunData] = OrderedDict()  # least recently used first
        self.events: dict[str, list[dict[str, Any]]] = {}  # every run's `runs` docs (small)
        self._seen_runs: set[str] = set()
        # The most recently started run, by the wall clock of its start (as `arena report`:
        # two backtests of the same day replay the same market times).
        self.latest: str | None = None
        self._latest_key: tuple[int, int, int] = (-1, -1, -1)

    def started_runs(self) -> list[str]:
        with self.lock:
            return [r for r, docs in self.events.items()
                    if any(d.get("event") == "started" for d in docs)]  # fmt: skip

    def get(self, run_id: str) -> RunData | None:
        """The run's read model, read from the journal first if it is not held."""
        with self.lock:
            data = self.runs.get(run_id)
            if data is not None and data.loaded:
                self.runs.move_to_end(run_id)
                return data
            if run_id not in self.events:
                return None
            return self.load(run_id)

    def _run(self, run_id: str) -> RunData:
        data = self.runs.get(run_id)
        if data is None:
            data = self.runs[run_id] = RunData(run_id, events=self.events.setdefault(run_id, []))
            data.loaded = self.journal is None
        return data

    def load(self, run_id: str) -> RunData:
        """Read the run's history from the journal (indexed windows only), then evict the least
        recently used runs beyond ``runs_kept`` (never the latest)."""
        with self.lock:
            data = self._run(run_id)
            if self.journal is not None and not data.loaded:
                _load(self.journal, data)
                data.loaded = True
            self.runs.move_to_end(run_id)
            while len(self.runs) > self.runs_kept:
                victim = next((r for r in self.runs if r not in (self.latest, run_id)), None)
                if victim is None:
                    break
                del self.runs[victim]
            return data

    def apply(self, batch: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        """Take new documents; returns the (collection, doc) pairs that were new. The lock is
        held per ``APPLY_CHUNK`` documents, not for the whole batch: a route reads between two
        chunks (it may see a collection a chunk ahead of another, as it may between polls)."""
        new: list[tuple[str, dict[str, Any]]] = []
        with self.lock:
            for doc in batch.get("runs", ()):
                eid = str(doc.get("_id"))
                run_id = doc.get("run_id")
                if not run_id or eid in self._seen_runs:
                    continue
                self._seen_runs.add(eid)
                new.append(("runs", doc))
                events = self.events.setdefault(str(run_id), [])
                events.append(doc)
                events.sort(key=doc_key)
                if doc.get("event") == "started":
                    key = (wall_ns(doc) or 0, int(doc.get("ts_ns") or 0), int(doc.get("seq") or 0))
                    if key >= self._latest_key:
                        self._latest_key, self.latest = key, str(run_id)
        for coll in ("equity", "fills", "predictions", "risk_events", "markouts"):
            docs = sorted(batch.get(coll, ()), key=doc_key)
            for lo in range(0, len(docs), APPLY_CHUNK):
                if lo:
                    # Hand the lock over: a route waiting on it takes it now (a lock released
                    # and taken again at once by the thread holding the GIL is rarely handed).
                    time.sleep(0)
                with self.lock:
                    for doc in docs[lo : lo + APPLY_CHUNK]:
                        run_id = doc.get("run_id")
                        if not run_id:
                            continue
                        data = self.runs.get(str(run_id))
                        if data is None and self.journal is None:
                            data = self._run(str(run_id))
                        if data is None or not data.loaded:
                            continue  # read from the journal when the run is asked for
                        if _take(data, coll, doc):
                            new.append((coll, doc))
        return new


def _take(data: RunData, coll: str, doc: dict[str, Any]) -> bool:
    if coll == "equity":
        return data.add_equity(doc)
    if coll == "fills":
        return data.fills.add(_fill(doc))
    if coll == "risk_events":
        return data.risk.add(doc)
    if coll == "markouts":
        return data.markouts.add(doc)
    return data.add_prediction(doc)


def doc_key(doc: Mapping[str, Any]) -> tuple[int, int]:
    """A journal document's order: market time, then the journal's sequence."""
    return (int(doc.get("ts_ns") or 0), int(doc.get("seq") or 0))


EQUITY_PROJECTION = {"_id": 0, "strategy": 1, "ts_ns": 1, "seq": 1, "equity": 1, "qty": 1,
                     "mark": 1}  # fmt: skip


def _load(journal: ReadModelJournal, data: RunData) -> None:
    """A run's history: per strategy the per-minute read model day by day up to the newest
    hour, the raw snapshots of that hour, and the newest fills, risk events and forecasts."""
    run_id = data.run_id
    latest = journal.find("equity_latest", {"run_id": run_id})
    for last in sorted(latest, key=lambda d: str(d["strategy"])):
        name = str(last["strategy"])
        end = int(last["ts_ns"])
        raw_from = end - RAW_S * 10**9
        first = journal.find("equity_minute", {"run_id": run_id, "strategy": name},
                             sort=[("ts_ns", 1)], limit=1, projection={"ts_ns": 1})  # fmt: skip
        older = _days(journal, run_id, name, int(first[0]["ts_ns"]), raw_from) if first else []
        for doc in older:
            data.add_equity(doc)
        raw = journal.equity_window(run_id, name, start_ns=raw_from, projection=EQUITY_PROJECTION)
        for doc in raw:
            data.add_equity(doc)
        data.last_equity[name] = {k: v for k, v in last.items() if k != "event_id"}
    names = sorted({str(d["strategy"]) for d in latest} | set(data.families()))
    _seed(journal, "fills", data, data.fills, names, _fill)
    _seed(journal, "risk_events", data, data.risk, names, dict)
    for doc in _markouts(journal, run_id):
        data.markouts.add(doc)
    newest = [("ts_ns", -1)]
    preds = journal.find("predictions", {"run_id": run_id}, sort=newest, limit=FORECASTS_KEPT)
    for doc in reversed(preds):
        data.add_prediction(doc)


def _days(
    journal: ReadModelJournal, run_id: str, name: str, start: int, end: int
) -> Iterable[dict[str, Any]]:
    """The per-minute snapshots in [start, end), a day per query (bounded transient memory)."""
    for lo in range(start - start % DAY_NS, end, DAY_NS):
        yield from journal.equity_window(run_id, name, per_minute=True, start_ns=max(lo, start),
                                         end_ns=min(lo + DAY_NS, end),
                                         projection=EQUITY_PROJECTION)  # fmt: skip


MARKOUT_PROJECTION = {"_id": 1, "strategy": 1, "is_maker": 1, "horizons_s": 1, "bps": 1, "ref": 1}


def _markouts(journal: ReadModelJournal, run_id: str) -> Iterable[dict[str, Any]]:
    """The run's markout records, a day of fills per query (bounded transient memory)."""
    filt = {"run_id": run_id}
    first = journal.find("markouts", filt, sort=[("ts_ns", 1)], limit=1, projection={"ts_ns": 1})
    last = journal.find("markouts", filt, sort=[("ts_ns", -1)], limit=1, projection={"ts_ns": 1})
    if not first or not last:
        return
    start, end = int(first[0]["ts_ns"]), int(last[0]["ts_ns"])
    for lo in range(start, end + 1, DAY_NS):
        window = {"run_id": run_id, "ts_ns": {"$gte": lo, "$lt": lo + DAY_NS}}
        yield from journal.find("markouts", window, projection=MARKOUT_PROJECTION)


def _seed(journal: ReadModelJournal, kind: str, data: RunData, recent: Recent, names: list[str],
          light: Callable[[dict[str, Any]], dict[str, Any]]) -> None:  # fmt: skip
    """The newest ``recent.kept`` documents of the run and of each strategy, and the counts."""
    run_id, newest = data.run_id, [("ts_ns", -1)]
    docs = journal.find(kind, {"run_id": run_id}, sort=newest, limit=recent.kept)
    recent.items.extend(light(d) for d in reversed(docs))
    recent.total = journal.count(kind, {"run_id": run_id})
    for name in names:
        filt = {"strategy": name, "run_id": run_id}
        docs = journal.find(kind, filt, sort=newest, limit=recent.kept)
        if docs:
            recent.by_strategy[name] = deque((light(d) for d in reversed(docs)), recent.kept)
            recent.counts[name] = journal.count(kind, filt)
    for doc in recent.items:
        recent.remember(str(doc.get("_id")))


FILL_FIELDS = ("_id", "strategy", "ts_ns", "seq", "side", "price", "qty", "fee", "realised",
               "is_maker", "run_id")  # fmt: skip


def _fill(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in FILL_FIELDS if k in doc}


def _prediction(doc: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("ts_ns", "seq", "base_price", "predicted_price", "log_returns", "target_ts_ns",
            "realised_price", "model_version")  # fmt: skip
    return {k: doc.get(k) for k in keep}
