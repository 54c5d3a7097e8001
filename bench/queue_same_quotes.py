"""The same quotes under each queue model on slices of the Bitstamp day (issue #20 item 1;
docs/exchange.md, "The window follows the tape's trade rate").

    .venv/bin/python -m bench.queue_same_quotes [--starts 60 300 600 900 1200] [--minutes 240]

A 1 BTC bid and ask at the recorded best prices every 30 s, each replaced after 30 s, through
the paper venue under ``l2``, ``l3``, the default ``tape`` (10 s or 20 prints) and ``tape`` over
10 s only: the quotes of ``tests/integration/test_book_replay_arena.py`` (its helper, so the
bench and the test place the same quotes). Prints maker BTC filled and quotes filled per slice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from decimal import Decimal

from cryptoarena.data.book_replay import load_bitstamp_market
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.samples import BITSTAMP_DAY, sample_path

from tests.integration.test_book_replay_arena import quote_slice

MODELS = {
    "l2": {"queue_model": "l2"},
    "l3": {"queue_model": "l3"},
    "tape (default)": {"queue_model": "tape"},
    "tape 10 s only": {"queue_model": "tape", "queue_min_trades": 0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, nargs="+", default=[60, 300, 600, 900, 1200])
    parser.add_argument("--minutes", type=int, default=240)
    args = parser.parse_args()
    path = sample_path(BITSTAMP_DAY)
    market, _ = load_bitstamp_market(path)
    trades, _ = load_trades(path)
    print(f"{BITSTAMP_DAY}, {args.minutes}-minute slices; load {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores\n")  # fmt: skip
    print("| slice (UTC) | " + " | ".join(MODELS) + " |")
    print("|---|" + "---|" * len(MODELS))
    for start in args.starts:
        cells = []
        for venue in MODELS.values():
            _, fills = asyncio.run(quote_slice(venue, market, trades, start, args.minutes))
            qty = sum((q for _, _, q, maker in fills if maker), Decimal(0))
            quotes = len({cid for cid, _, _, maker in fills if maker})
            cells.append(f"{qty:.1f} BTC, {quotes} quotes")
        end = start + args.minutes
        label = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
