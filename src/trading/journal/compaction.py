"""Journal growth and compaction (``arena journal stats``, ``arena journal compact``).

Stats: per run and UTC day (market time), the documents each kind gained, and the journal's
size on disk (``dbstats``' storageSize on either store) with its growth per day.

Compaction: the raw equity snapshots older than ``older_than_s`` (counted back from the run's
newest snapshot, in market time: a replay's times are not today's) are deleted, only in runs
whose report reads the per-minute read model (``equity_minute``, kept whole) instead of raw
snapshots (:func:`~cryptoarena.trading.results.source.reads_minute_model`): no report or
verdict changes. Shorter runs are small and keep every snapshot. Deletes go through the store's
own ``delete_many`` (SQLite or MongoDB alike); the dashboard reads raw snapshots only for a
run's newest hour, hence the one-hour floor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cryptoarena.trading.journal import schema
from cryptoarena.trading.journal.journal import Journal
from cryptoarena.trading.results.source import reads_minute_model, wall_ns

logger = logging.getLogger(__name__)

DAY_NS = 86_400 * 10**9
MIN_AGE_S = 3_600.0  # the dashboard's raw tier (memory.RAW_S) must stay in the journal
# Kinds counted per day (the read models are bounded by runs and minutes, not events).
COUNTED = (*schema.KINDS, schema.EQUITY_MINUTE)


@dataclass
class RunDays:
    run_id: str
    days: dict[int, dict[str, int]] = field(default_factory=dict)  # UTC day start -> kind -> n


@dataclass
class JournalStats:
    storage_bytes: int
    runs: list[RunDays]

    @property
    def days(self) -> int:
        return len({d for r in self.runs for d in r.days})

    @property
    def bytes_per_day(self) -> float:
        return self.storage_bytes / max(1, self.days)


def _started(journal: Journal) -> dict[str, dict[str, object]]:
    """Each run's last ``started`` record (a resumed run starts again)."""
    out: dict[str, dict[str, object]] = {}
    for doc in sorted(journal.runs(), key=lambda d: (wall_ns(d) or 0, int(d.get("seq", 0)))):
        if doc.get("event") == "started":
            out[str(doc["run_id"])] = doc
    return out


def journal_stats(journal: Journal) -> JournalStats:
    """Documents per run, UTC day and kind (counted through the ``run_id + ts_ns`` indexes, a
    query per day and kind: nothing is read whole), and the size on disk."""
    runs = []
    for run_id in _started(journal):
        latest = journal.latest_equity(run_id)
        first = journal.find("runs", {"run_id": run_id}, sort=[("ts_ns", 1)], limit=1)
        begin = int(first[0]["ts_ns"]) if first else 0
        end = max((int(d["ts_ns"]) for d in latest.values()), default=begin)
        item = RunDays(run_id)
        for day in range(begin - begin % DAY_NS, end + 1, DAY_NS):
            window = {"run_id": run_id, "ts_ns": {"$gte": day, "$lt": day + DAY_NS}}
            counts = {kind: journal.count(kind, window) for kind in COUNTED}
            if any(counts.values()):
                item.days[day] = counts
        runs.append(item)
    return JournalStats(journal.storage_bytes(), runs)


@dataclass
class Compaction:
    deleted: dict[str, int] = field(default_factory=dict)  # run -> raw equity snapshots deleted
    kept: list[str] = field(default_factory=list)  # runs whose report reads raw snapshots


def compact(journal: Journal, older_than_s: float, *, dry_run: bool = False) -> Compaction:
    """Delete raw equity snapshots older than ``older_than_s`` (market time, back from each
    run's newest snapshot) in the runs whose report reads the per-minute read model."""
    if older_than_s < MIN_AGE_S:
        raise ValueError(f"the age must be at least {MIN_AGE_S / 3600:.0f} h (the dashboard "
                         "reads a run's newest hour of raw snapshots)")  # fmt: skip
    out = Compaction()
    for run_id, start in _started(journal).items():
        latest = journal.latest_equity(run_id)
        if not latest or not reads_minute_model(start, latest):
            out.kept.append(run_id)
            continue
        cutoff = max(int(d["ts_ns"]) for d in latest.values()) - int(older_than_s * 1e9)
        old = {"run_id": run_id, "ts_ns": {"$lt": cutoff}}
        n = journal.count("equity", old) if dry_run else journal.delete("equity", old)
        out.deleted[run_id] = n
        logger.info("journal: %s %d raw equity snapshots of %s before %d", "would delete"
                    if dry_run else "deleted", n, run_id, cutoff)  # fmt: skip
    return out
