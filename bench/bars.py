"""Trades → 1-second bars on the real Tardis day (137,988 Binance BTCUSDT perp trades, 2020-02-22).

    .venv/bin/python -m bench.bars [--repeats N]

Reports trades/s (best of N repeats) for the vectorised ``build_bars`` and for the incremental
``BarBuilder`` in feed-sized batches: ``add_many`` returning Bar records (handed to a consumer
that drops them, as the worker does, or all collected in one list) and ``add_arrays`` returning
columns. Targets: ≥ 10M trades/s vectorised, ≥ 1M trades/s incremental.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from cryptoarena.data.bars import BarBuilder, build_bars, build_bars_incremental
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import Trade, records_to_bars
from cryptoarena.data.samples import BINANCE_FEED, TARDIS_DAY, sample_path


def best_of(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    trades, _ = load_trades(sample_path(TARDIS_DAY))
    n = len(trades)
    cols = [trades[c].to_numpy() for c in ("ts", "price", "size", "side")]
    records = [
        Trade(t, p, q, s, str(i))
        for t, p, q, s, i in zip(*(c.tolist() for c in cols), trades["trade_id"], strict=True)
    ]
    # The inputs (138k Trade records) are not the work being measured: keep the cyclic GC from
    # re-scanning them on every collection (it would dominate the timings).
    gc.collect()
    gc.freeze()
    print(f"machine: {machine()}")
    print(f"input: {TARDIS_DAY}: {n:,} trades → {len(build_bars(trades)):,} one-second bars")

    # Same bars from every path (exact OHLC/ts/count; sums to rounding): checked once here.
    vec = build_bars(trades)
    inc = records_to_bars(build_bars_incremental(trades, batch=1024))
    assert (
        len(vec) == len(inc)
        and (vec[["ts", "open", "close", "trades"]] == inc[["ts", "open", "close", "trades"]])
        .all()
        .all()
    )

    def consume(batch: int) -> int:
        builder, closed = BarBuilder(), 0
        for i in range(0, n, batch):
            closed += len(builder.add_many(*(c[i : i + batch] for c in cols)))
        return closed + len(builder.flush())

    def columns(batch: int) -> int:
        builder, closed = BarBuilder(), 0
        for i in range(0, n, batch):
            closed += len(builder.add_arrays(*(c[i : i + batch] for c in cols))["ts"])
        return closed

    def from_records(batch: int) -> int:
        # What a worker does with a feed batch: Trade records → columns → add_many.
        builder, closed = BarBuilder(), 0
        for i in range(0, n, batch):
            part = records[i : i + batch]
            closed += len(
                builder.add_many(
                    [t.ts for t in part],
                    [t.price for t in part],
                    [t.size for t in part],
                    [t.side for t in part],
                )
            )
        return closed

    rows: list[tuple[str, int | str, float]] = []
    rows.append(
        (
            "vectorised build_bars (frame → bar frame)",
            "all",
            best_of(lambda: build_bars(trades), 3 * args.repeats),
        )
    )
    for batch in (64, 256, 1024):
        rows.append(
            (
                "BarBuilder.add_many → Bar records, consumed",
                batch,
                best_of(lambda b=batch: consume(b), args.repeats),
            )
        )
    for batch in (256, 1024):
        rows.append(
            (
                "BarBuilder.add_many → Bar records, all kept in one list",
                batch,
                best_of(lambda b=batch: build_bars_incremental(trades, batch=b), args.repeats),
            )
        )
    for batch in (256, 1024):
        rows.append(
            (
                "BarBuilder.add_many from list[Trade] (feed batches)",
                batch,
                best_of(lambda b=batch: from_records(b), args.repeats),
            )
        )
    for batch in (64, 256, 1024):
        rows.append(
            (
                "BarBuilder.add_arrays → bar columns",
                batch,
                best_of(lambda b=batch: columns(b), args.repeats),
            )
        )

    table = pd.DataFrame(
        [(what, batch, f"{secs * 1e3:.1f}", f"{n / secs / 1e6:.2f}") for what, batch, secs in rows],
        columns=["path", "batch", "best ms", "M trades/s"],
    )
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))
    dense_tape(args.repeats)
    print(f"machine after: {machine()}")


def dense_tape(repeats: int) -> None:
    """The same paths on a dense tape (10 minutes of Binance spot, ~28 trades per bar)."""
    trades, _ = load_trades(sample_path(BINANCE_FEED))
    n = len(trades)
    cols = [trades[c].to_numpy() for c in ("ts", "price", "size", "side")]

    def consume(batch: int) -> None:
        builder = BarBuilder()
        for i in range(0, n, batch):
            builder.add_many(*(c[i : i + batch] for c in cols))

    rows = [("vectorised build_bars", "all", best_of(lambda: build_bars(trades), 3 * repeats))]
    for batch in (64, 256, 1024):
        secs = best_of(lambda b=batch: consume(b), repeats)
        rows.append(("BarBuilder.add_many → Bar records, consumed", batch, secs))
    print(f"input: {BINANCE_FEED}: {n:,} trades → {len(build_bars(trades)):,} one-second bars")
    for what, batch, secs in rows:
        print(f"  {what:<45} {batch!s:>5} {secs * 1e3:8.1f} ms {n / secs / 1e6:8.2f} M trades/s")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
