"""Live order book: Bybit ``orderbook.50`` messages through the feed's book tracker.

    .venv/bin/python -m bench.book [--seconds 3600] [--repeats 5]

A seeded Bybit-format sequence (tests/fakes/bybit_book.py: ~3 updates per second, 50 levels a
side, as ``orderbook.50`` keeps) is applied by ``BybitBookTracker`` (sequence check, level updates, per-second top-20
snapshot), the work the feed does on the event loop for every message. Reports messages/s (best
of N). Bybit pushes ``orderbook.50`` every 20 ms at most (50 messages/s), so the budget per
message is 20 ms.
"""

from __future__ import annotations

import argparse
import time

from cryptoarena.data.book import BookSnapshot, BybitBookTracker

from bench.bars import machine
from tests.fakes.bybit_book import ExchangeBook, random_book_changes

T0 = 1_767_571_200_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--levels", type=int, default=20)
    args = parser.parse_args()
    book = ExchangeBook()
    changes = random_book_changes(7, args.seconds, T0, levels=50)
    messages = [book.change(50, b, a, ts) for ts, b, a in changes]
    messages[0] = messages[0] | {"type": "snapshot"}
    best = float("inf")
    published = 0
    for _ in range(args.repeats):
        out: list[BookSnapshot] = []
        tracker = BybitBookTracker("BTCUSDT", args.levels, out.append)
        started = time.perf_counter()
        for message in messages:
            tracker.on_message(message)
        best = min(best, time.perf_counter() - started)
        published = len(out)
    n = len(messages)
    print(f"machine: {machine()}")
    print(
        f"{n:,} messages over {args.seconds:,} s → {published:,} snapshots (top {args.levels}): "
        f"best {best * 1e3:.1f} ms, {n / best:,.0f} messages/s, {best / n * 1e6:.1f} µs/message"
    )


if __name__ == "__main__":
    main()
