"""Journal: the hot-path cost of ``record`` and what the writer sustains on litemongo.

    .venv/bin/python -m bench.journal [--events N]

Measures (1) ``record`` latency per call (p50/p99/max, µs) while the writer thread drains to
litemongo, paced like a busy worker and as a burst that overflows the queue, (2) sustained throughput to the database (events/s from the first record until
``sync`` returns), (3) the outage path: events/s appended to the fsync'd spill while MongoDB is
unreachable, and (4) the replay rate of that spill into litemongo at the next open.
Typical trading documents (decisions with a dozen fields).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import tempfile
import time
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
    """``record`` latency (µs) with the writer draining to litemongo; ``pace_s`` between calls
    (0 = a burst as fast as possible, which fills the queue and takes the overflow path)."""
    settings = Settings(mongo=MongoSettings(embedded_dir=root))
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


def sustained(root: Path, n: int) -> float:
    """Events/s into litemongo, from the first record until ``sync`` returns."""
    settings = Settings(mongo=MongoSettings(embedded_dir=root))
    config = JournalConfig(writer=WriterConfig(queue_size=n + 10))  # measure the store, not spill
    with Journal.open(settings, run_id="bench", config=config) as journal:
        start = time.perf_counter()
        for i in range(n):
            journal.record("decisions", _doc(i))
        assert journal.sync(600)
        return n / (time.perf_counter() - start)


def outage_and_replay(root: Path, n: int) -> tuple[float, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spill_dir = root / "spill"
    down = Settings(
        mongo=MongoSettings(
            uri=f"mongodb://127.0.0.1:{port}/?directConnection=true", spill_dir=spill_dir
        )  # type: ignore[arg-type]
    )
    config = JournalConfig(store=StoreConfig(server_selection_timeout_ms=200), open_timeout_s=5)
    with Journal.open(down, run_id="bench-down", config=config) as journal:
        start = time.perf_counter()
        for i in range(n):
            journal.record("decisions", _doc(i))
        assert journal.flush(600)
        spill_rate = n / (time.perf_counter() - start)
        journal.close(timeout_s=0.5)
    up = Settings(mongo=MongoSettings(embedded_dir=root / "journal2", spill_dir=spill_dir))
    start = time.perf_counter()
    with Journal.open(up, run_id="bench-up", config=JournalConfig(open_timeout_s=600)) as journal:
        assert journal.sync(600)
        replay_rate = n / (time.perf_counter() - start)
        assert journal.count("decisions", {"run_id": "bench-down"}) == n
    return spill_rate, replay_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for label, n, pace in (
            ("paced ~1k/s", min(args.events, 5000), 0.0005),
            ("burst", args.events, 0.0),
        ):
            lat = record_latency(root / label.split()[0], n, pace)
            p50, p99 = np.percentile(lat, [50, 99])
            print(f"record() {label}: p50 {p50:.1f} µs, p99 {p99:.1f} µs, max {lat.max():.0f} µs")
        rate = sustained(root / "sustained", args.events)
        print(f"litemongo sustained: {rate:,.0f} events/s ({args.events:,} events, record → sync)")
        spill, replay = outage_and_replay(root, args.events)
        print(f"outage (MongoDB refused): {spill:,.0f} events/s into the fsync'd spill")
        print(f"replay into litemongo at the next open: {replay:,.0f} events/s")


if __name__ == "__main__":
    main()
