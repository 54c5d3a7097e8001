"""Exchange benchmarks: paper matching throughput over one real day of trades, and the Bybit
adapter's round trips (real pybit → fake Bybit on 127.0.0.1).

Also: nine strategy books on one paper venue (isolated vs shared liquidity), the kline loader
over every Binance 1 m file, and the bar-level venue over a year of 1 m bars.

Run: ``.venv/bin/python -m bench.exchange [--resting 0 10 100] [--round-trips 200]
[--books 9] [--klines DIR]``
Prints a JSON summary. Never part of pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

from cryptoarena.clock import SimClock
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import Trade
from cryptoarena.data.samples import TARDIS_DAY, sample_path
from cryptoarena.trading.exchange.models import OrderRequest, OrderType, Side
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.exchange.venue import Liquidity

D = Decimal


def day_batches() -> list[list[Trade]]:
    """The shipped day (137,988 real trades) in one batch per second, as the feed delivers."""
    frame, _ = load_trades(sample_path(TARDIS_DAY))
    batches: list[list[Trade]] = []
    second = -1
    for ts, p, s, side, tid in zip(
        frame["ts"], frame["price"], frame["size"], frame["side"], frame["trade_id"], strict=True
    ):
        if int(ts) // 10**9 != second:
            second = int(ts) // 10**9
            batches.append([])
        batches[-1].append(Trade(int(ts), float(p), float(s), int(side), str(tid)))
    return batches


async def paper_throughput(batches: list[list[Trade]], resting: int) -> dict[str, float]:
    clock = SimClock(batches[0][0].ts)
    ex = PaperExchange(PaperExchangeConfig(initial_balance=D("10000000")), clock=clock)
    stream = ex.updates()  # a consumer exists, as in the worker
    first = D(str(batches[0][0].price))
    for n in range(resting):  # far from the market: they are checked on every trade
        await ex.place_order(
            OrderRequest(f"r{n}", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, first / 2)
        )
    trades = fills = 0
    t0 = time.perf_counter()
    for i, batch in enumerate(batches):
        clock.advance_to(batch[-1].ts)
        fills += len(ex.on_trades(batch))
        trades += len(batch)
        if i % 60 == 0:  # one market order a minute, alternating sides
            side = Side.BUY if (i // 60) % 2 == 0 else Side.SELL
            await ex.place_order(OrderRequest(f"m{i}", "BTCUSDT", side, D("0.05")))
    elapsed = time.perf_counter() - t0
    await ex.close()
    async for _ in stream:
        pass
    return {
        "resting": resting,
        "trades": trades,
        "fills": fills,
        "seconds": elapsed,
        "trades_per_s": trades / elapsed,
    }


async def books_throughput(
    batches: list[list[Trade]], books: int, liquidity: Liquidity
) -> dict[str, object]:
    """``books`` strategies on one venue: each a market order a minute and one resting limit
    re-priced (amended) every minute 5 bp below the market, as a maker arm would."""
    clock = SimClock(batches[0][0].ts)
    cfg = PaperExchangeConfig(initial_balance=D("10000000"), liquidity=liquidity)
    ex = PaperExchange(cfg, clock=clock)
    stream = ex.updates()
    maker: dict[int, str] = {}  # book -> its working maker bid
    trades = fills = 0
    t0 = time.perf_counter()
    for i, batch in enumerate(batches):
        clock.advance_to(batch[-1].ts)
        fills += len(ex.on_trades(batch))
        trades += len(batch)
        if i % 60 == 0:
            last = D(str(batch[-1].price))
            price = (last * D("0.9995")).quantize(D("0.1"))
            for b in range(books):
                side = Side.BUY if (i // 60 + b) % 2 == 0 else Side.SELL
                await ex.place_order(
                    OrderRequest(f"r-{b:02d}-a-m{i:x}", "BTCUSDT", side, D("0.05"))
                )
                bid = maker.get(b)
                if bid is not None and (await ex.get_order("BTCUSDT", bid)).status.is_open:  # type: ignore[union-attr]
                    await ex.amend_order("BTCUSDT", bid, price=price)
                else:
                    maker[b] = f"r-{b:02d}-a-l{i:x}"
                    await ex.place_order(
                        OrderRequest(
                            maker[b], "BTCUSDT", Side.BUY, D("0.05"), OrderType.LIMIT, price
                        )
                    )
    elapsed = time.perf_counter() - t0
    await ex.close()
    async for _ in stream:
        pass
    return {
        "books": books,
        "liquidity": liquidity.value,
        "trades": trades,
        "fills": fills,
        "seconds": elapsed,
        "trades_per_s": trades / elapsed,
    }


def klines_and_bar_venue(folder: Path) -> dict[str, object]:
    """Load every kline file, then run a market order every 60 bars over 2024's bars."""
    from cryptoarena.data.loaders import load_binance_klines_many
    from cryptoarena.data.records import bars_to_records
    from cryptoarena.trading.exchange.venue import SimVenue, VenueConfig

    files = sorted(folder.glob("*.csv.gz"))
    t0 = time.perf_counter()
    frame, report = load_binance_klines_many(files)
    load_s = time.perf_counter() - t0
    year = frame[frame["ts"] < 1_735_689_600 * 10**9]  # 2024
    bars = bars_to_records(year)
    venue = SimVenue(VenueConfig(latency_ms=0, initial_balance=D("10000000")), name="bars")
    fills = 0
    t0 = time.perf_counter()
    for i, bar in enumerate(bars):
        fills += len(venue.on_bar(bar, "BTCUSDT"))
        if i % 60 == 0:
            side = Side.BUY if (i // 60) % 2 == 0 else Side.SELL
            venue.submit(OrderRequest(f"m{i}", "BTCUSDT", side, D("0.05")), bar.ts + 60 * 10**9)
    bar_s = time.perf_counter() - t0
    return {
        "files": len(files),
        "bars_loaded": report.rows,
        "load_seconds": load_s,
        "year_bars": len(bars),
        "bar_venue_seconds": bar_s,
        "bars_per_s": len(bars) / bar_s,
        "fill_events": fills,
    }


async def bybit_round_trips(count: int) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.fakes.tape import real_tape
    from tests.integration.bybit_harness import Collector, bybit_on_fake

    place, cancel, push = [], [], []
    tape = real_tape(count + 10)
    async with bybit_on_fake() as (ex, account, _fake):
        account.trade(tape[:5])
        updates = Collector(ex.updates())
        for n in range(count):
            req = OrderRequest(f"b{n}", "BTCUSDT", Side.BUY, D("0.01"), OrderType.LIMIT, D("5000"))
            t0 = time.perf_counter()
            await ex.place_order(req)
            t1 = time.perf_counter()
            await ex.cancel_order("BTCUSDT", req.client_id)
            place.append(t1 - t0)
            cancel.append(time.perf_counter() - t1)
        for n in range(min(count, 50)):  # trade → Fill on updates(): matching + WS + parsing
            await ex.place_order(OrderRequest(f"f{n}", "BTCUSDT", Side.BUY, D("0.001")))
            before = len(updates.fills)
            t0 = time.perf_counter()
            trade = tape[5 + n]
            account.trade([Trade(trade.ts + 10**12 * (n + 1), trade.price, 10.0, 1, f"x{n}")])
            while len(updates.fills) <= before:  # poll at 1 ms (wait_for polls at 20 ms)
                await asyncio.sleep(0.001)
            push.append(time.perf_counter() - t0)
        await updates.stop()

    def ms(values: list[float], q: float) -> float:
        return 1000 * statistics.quantiles(values, n=100)[int(q) - 1]

    return {
        "round_trips": count,
        "place_p50_ms": ms(place, 50),
        "place_p95_ms": ms(place, 95),
        "cancel_p50_ms": ms(cancel, 50),
        "cancel_p95_ms": ms(cancel, 95),
        "trade_to_fill_p50_ms": ms(push, 50),
        "trade_to_fill_p95_ms": ms(push, 95),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resting", type=int, nargs="*", default=[0, 10, 100])
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--books", type=int, default=9)
    parser.add_argument(
        "--klines", type=Path, default=Path("../shared/data/binance_spot_BTCUSDT_1m")
    )
    args = parser.parse_args()
    batches = day_batches()
    paper = [await paper_throughput(batches, r) for r in args.resting]
    books = [await books_throughput(batches, args.books, mode) for mode in Liquidity]
    bars = klines_and_bar_venue(args.klines) if args.klines.is_dir() else None
    bybit = await bybit_round_trips(args.round_trips) if args.round_trips else None
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores, Python "
                f"{platform.python_version()}",
                "paper": paper,
                "books": books,
                "klines": bars,
                "bybit_fake": bybit,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
