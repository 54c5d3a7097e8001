"""Journal: the hot-path cost of ``record`` and what the writer sustains on the embedded store.

    .venv/bin/python -m bench.journal [--events N] [--store embedded|litemongo]

Measures (1) ``record`` latency per call (p50/p99/max, µs) while the writer thread drains to
the store, paced like a busy worker and as a burst; (2) sustained live throughput (events/s from
the first ``record`` until ``sync`` returns: per-event upserts); (3) the backtest bulk path
(``Journal.open(bulk=True)``, ``record_many`` in chunks of 1,000: plain inserts, large
transactions), also until ``sync``; (4) the outage path: events/s into the fsync'd spill while
the embedded store is locked by another connection ("database is locked"), and the replay rate
of that spill into the same store once the lock goes. Both wall time and the process's CPU time
per event are printed: the machine is shared, CPU µs/event is the steadier figure.
``--store litemongo`` runs (2) against the previous embedded store (litemongo 0.2.0's
``bulk_write`` of the same upserts) for the before/after comparison. Typical trading documents
(decisions with a dozen fields).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from cryptoarena.config import MongoSettings, Settings
from cryptoarena.trading.journal import Journal, JournalConfig, StoreConfig, WriterConfig


def _doc(i: int) -> dict[str, object]:
    return {
        "strategy": ("sma", "rsi", "lstm", "bollinger")[i % 4],
        "bar_ts_ns": 1_582_329_600_000_000_000 + i * 1_000_000_000,
        "target": 0.01 * (i % 7),
        "position": 0.005 * (i % 3),
        "price": 9_700.5 + i % 100,
        "reason": "fast above slow",
        "features": {"fast": 9_701.2, "slow": 9_699.9},
        "i": i,
    }


def record_latency(root: Path, n: int, pace_s: float) -> np.ndarray:
    """``record`` latency (µs) with the writer draining to the store; ``pace_s`` between calls
    (0 = a burst as fast as possible, which fills the queue and takes the overflow path)."""
    settings = _settings(root)
    lat = np.empty(n)
    with Journal.open(settings, run_id="bench") as journal:
        for i in range(n):
            t0 = time.perf_counter_ns()
            journal.record("decisions", _doc(i))
            lat[i] = time.perf_counter_ns() - t0
            if pace_s:
                time.sleep(pace_s)
        assert journal.sync(600)
    return lat / 1000.0


def _settings(root: Path) -> Settings:
    return Settings(mongo=MongoSettings(embedded_dir=root))


def sustained(root: Path, n: int) -> tuple[float, float]:
    """Live path: events/s into the store from the first record until ``sync`` returns, and
    CPU µs per event."""
    config = JournalConfig(writer=WriterConfig(queue_size=n + 10))  # measure the store, not spill
    docs = [_doc(i) for i in range(n)]
    with Journal.open(_settings(root), run_id="bench", config=config) as journal:
        start, cpu = time.perf_counter(), time.process_time()
        for doc in docs:
            journal.record("decisions", doc)
        assert journal.sync(600)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert journal.count("decisions", {"run_id": "bench"}) == n
    return n / wall, cpu / n * 1e6


def bulk(root: Path, n: int, chunk: int = 1000) -> tuple[float, float]:
    """Backtest path: ``record_many`` chunks into a bulk journal, until ``sync``."""
    docs = [_doc(i) for i in range(n)]
    with Journal.open(_settings(root), run_id="bench-bulk", bulk=True) as journal:
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(0, n, chunk):
            journal.record_many("decisions", docs[k : k + chunk])
        assert journal.sync(600)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert journal.count("decisions", {"run_id": "bench-bulk"}) == n
    return n / wall, cpu / n * 1e6


def litemongo_sustained(root: Path, n: int) -> tuple[float, float]:
    """The previous embedded store: litemongo's ``bulk_write`` of the same ``$setOnInsert``
    upserts, 500 per call (what the journal's writer did before)."""
    import litemongo
    from cryptoarena.trading.journal.sanitize import clean_document
    from pymongo import UpdateOne

    client = litemongo.connect(str(root.absolute()), tz_aware=True)
    coll = client["cryptoarena"]["decisions"]
    coll.create_index([("run_id", 1), ("ts_ns", 1)])
    coll.create_index([("strategy", 1), ("ts_ns", 1)])
    start, cpu = time.perf_counter(), time.process_time()
    for k in range(0, n, 500):
        reqs = []
        for i in range(k, min(n, k + 500)):
            doc = {**clean_document(_doc(i)), "run_id": "bench", "ts_ns": i, "seq": i + 1}
            reqs.append(UpdateOne({"_id": f"bench:{i:010d}"}, {"$setOnInsert": doc}, upsert=True))
        coll.bulk_write(reqs, ordered=True)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    client.close()
    return n / wall, cpu / n * 1e6


def outage_and_replay(root: Path, n: int) -> tuple[float, float]:
    """The embedded store locked by another connection: events go to the spill; then the lock
    goes and the same store replays its spill."""
    settings = _settings(root)
    config = JournalConfig(
        store=StoreConfig(busy_timeout_ms=100),
        writer=WriterConfig(retry_initial_s=0.05, retry_max_s=0.2),
        open_timeout_s=600,
    )
    path = root / f"{settings.mongo.database}.sqlite3"
    with Journal.open(settings, run_id="bench-down", config=config) as journal:
        assert journal.sync(30)
        lock = sqlite3.connect(path, timeout=0, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        start = time.perf_counter()
        for i in range(n):
            journal.record("decisions", _doc(i))
        assert journal.flush(600)
        spill_rate = n / (time.perf_counter() - start)
        assert not journal.healthy
        start = time.perf_counter()
        lock.rollback()
        lock.close()
        assert journal.sync(600)
        replay_rate = n / (time.perf_counter() - start)
        assert journal.count("decisions", {"run_id": "bench-down"}) == n
    return spill_rate, replay_rate


def _equity_doc(name: str, ts: int, t: int) -> dict[str, object]:
    return {
        "strategy": name,
        "ts_ns": ts,
        "equity": 10_000.0 + t / 1e4,
        "cash": "5000.1",
        "qty": 0.01,
        "avg_price": "9700.5",
        "realised": "1.5",
        "fees": "0.2",
        "fills": t // 600,
        "mark": 9_700.5,
    }


def report_day(root: Path, strategies: int = 9, every_s: int = 5) -> None:
    """A full day of ``strategies`` equity curves (a snapshot every ``every_s`` s, the example
    config's cadence) plus a decision per strategy per 10 s, written through the bulk path; then
    the reads a report and a restart make, timed (best of 3)."""
    day_s, t0 = 86_400, 1_582_329_600 * 10**9
    names = [f"strategy_{k}" for k in range(strategies)]
    with Journal.open(_settings(root), run_id="day", bulk=True) as journal:
        start = time.perf_counter()
        for t in range(0, day_s, every_s):
            ts = t0 + t * 10**9
            journal.record_many("equity", [_equity_doc(n, ts, t) for n in names])
            if t % 10 == 0:
                journal.record_many(
                    "decisions", [{"strategy": n, "ts_ns": ts, "target": 0.5} for n in names]
                )
        assert journal.sync(600)
        written = journal.count("equity") + journal.count("decisions")
        print(f"day written: {written:,} events in {time.perf_counter() - start:.1f} s (bulk)")

        def best(fn: Callable[[], object]) -> tuple[float, float, object]:
            times, cpus, out = [], [], None
            for _ in range(3):
                begin, cpu = time.perf_counter(), time.process_time()
                out = fn()
                times.append(time.perf_counter() - begin)
                cpus.append(time.process_time() - cpu)
            return min(times), min(cpus), out

        cases: list[tuple[str, Callable[[], object]]] = [
            ("equity_curves (every snapshot, all fields)", lambda: journal.equity_curves("day")),
            (
                "equity_curves(fields=('equity',))",
                lambda: journal.equity_curves("day", fields=("equity",)),
            ),
            (
                "equity_curves(per_minute=True)",
                lambda: journal.equity_curves("day", per_minute=True),
            ),
            ("latest_equity (restart books)", lambda: len(journal.latest_equity("day"))),
            ("checkpoint_ns (restart)", lambda: journal.checkpoint_ns("day")),
        ]
        for label, fn in cases:
            took, cpu, out = best(fn)
            size = sum(len(v) for v in out.values()) if isinstance(out, dict) else out
            print(f"  {label}: {took * 1000:,.1f} ms, {cpu * 1000:,.1f} ms CPU (→ {size:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--store", choices=("embedded", "litemongo"), default="embedded")
    parser.add_argument(
        "--report-day", action="store_true", help="only the full-day report/restart reads"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
        f", load average {os.getloadavg()[0]:.2f}"
    )
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.report_day:
            report_day(root / "day")
            return
        if args.store == "litemongo":
            rate, cpu = litemongo_sustained(root / "lite", n)
            print(f"litemongo live upserts: {rate:,.0f} events/s, {cpu:.1f} CPU µs/event ({n:,})")
            return
        for label, count, pace in (("paced ~1k/s", min(n, 5000), 0.0005), ("burst", n, 0.0)):
            lat = record_latency(root / label.split()[0], count, pace)
            p50, p99 = np.percentile(lat, [50, 99])
            print(f"record() {label}: p50 {p50:.1f} µs, p99 {p99:.1f} µs, max {lat.max():.0f} µs")
        rate, cpu = sustained(root / "sustained", n)
        print(f"live (record → sync): {rate:,.0f} events/s, {cpu:.1f} CPU µs/event ({n:,} events)")
        rate, cpu = bulk(root / "bulk", n)
        print(f"bulk (record_many → sync): {rate:,.0f} events/s, {cpu:.1f} CPU µs/event")
        spill, replay = outage_and_replay(root / "outage", min(n, 20_000))
        print(f"outage (store locked): {spill:,.0f} events/s into the fsync'd spill")
        print(f"replay into the same store when the lock goes: {replay:,.0f} events/s")


if __name__ == "__main__":
    main()
