"""Trading fault tests: the journal's database goes away mid-run, and the worker is SIGKILLed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest
from cryptoarena.trading.config import all_strategies_config
from cryptoarena.trading.exchange.models import Side
from cryptoarena.trading.journal import Journal, JournalConfig, WriterConfig
from cryptoarena.trading.journal.schema import KINDS
from cryptoarena.trading.portfolio.ledger import Ledger

from tests.integration.journal_helpers import sqlite_locked
from tests.integration.trading_kit import (
    TrailingMoveSource,
    arena_env,
    journal_settings,
    run_worker,
    start_arena,
    tape_slice,
)

pytestmark = pytest.mark.slow


async def test_journal_outage_mid_run_every_event_exactly_once(tmp_path: Path) -> None:
    settings = journal_settings(tmp_path)
    config = all_strategies_config(bar_size="5s", fee_rate=0.0001)
    small = JournalConfig(
        writer=WriterConfig(queue_size=512, batch_size=64, retry_initial_s=0.2, retry_max_s=0.5)
    )
    seen_outage = asyncio.Event()
    during_outage: list[int] = []  # events handed over while the database was unreachable

    async def until(condition: Callable[[], object], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return bool(condition())

    async def outage(journal: Journal) -> None:
        # The outage comes once the run is under way: some of its orders are in the database.
        assert await until(lambda: journal.find("orders", {"run_id": "outage"}, limit=1))
        with ExitStack() as stack:
            for coll in ("orders",):  # the embedded store is one file: one lock stops it all
                for _ in range(200):  # the writer may be mid-transaction: retry the lock
                    try:
                        stack.enter_context(sqlite_locked(settings, coll))
                        break
                    except Exception:
                        await asyncio.sleep(0.01)
            if await until(lambda: not journal.healthy):
                seen_outage.set()
                # The worker keeps trading against the dead database: 50 more events.
                dead_from = journal.last_seq
                await until(lambda: journal.last_seq >= dead_from + 50)
                if not journal.healthy:
                    during_outage.append(journal.last_seq - dead_from)

    with Journal.open(settings, run_id="outage", config=small) as journal:
        task = asyncio.create_task(outage(journal))
        # 25 market minutes at 200× last 7.5 s of wall time however fast the machine: the
        # outage (once its first orders are in) falls inside the run.
        worker, result = await run_worker(config, tape_slice(3600, 25), journal, run_id="outage",
                                          source=TrailingMoveSource(), speed=200)  # fmt: skip
        await task
        assert seen_outage.is_set(), "the database never became unreachable during the run"
        assert during_outage and during_outage[0] >= 50, "no events handed over in the outage"
        assert journal.sync(120) and journal.healthy

        # Every event the worker handed over is in the database exactly once.
        for kind in KINDS:
            docs = journal.find(kind, {"run_id": "outage"})
            assert len(docs) == result.journaled.get(kind, 0), kind
        orders = journal.find("orders", {"run_id": "outage"})
        fills = journal.find("fills", {"run_id": "outage"})
        assert len({o["client_id"] for o in orders}) == len(orders) > 0
        assert len({f["exec_id"] for f in fills}) == len(fills) > 0
        preds = journal.find("predictions", {"run_id": "outage"})
        resolved = [p for p in preds if p["realised_price"] is not None]
        assert len(resolved) >= len(preds) - 16
        # The journal's fills rebuild every book exactly.
        for name, book in worker.books.items():
            again = Ledger(name, capital=book.capital)
            for f in sorted(
                (f for f in fills if f["strategy"] == name), key=lambda f: (f["ts_ns"], f["seq"])
            ):
                again.apply_fill(
                    Side(f["side"]), Decimal(f["qty"]), Decimal(f["price"]), Decimal(f["fee"])
                )
            assert (again.qty, again.cash, again.fees) == (book.qty, book.cash, book.fees)


CONFIG = """
[arena]
capital = 10000.0
fee_rate = 0.0001
equity_every_s = 5.0

[[strategy]]
name = "sma"
kind = "sma_cross"
params = { fast = 3, slow = 8, bar_size = "5s" }

[[strategy]]
name = "rsi"
kind = "rsi_reversion"
params = { period = 6, bar_size = "5s" }

[[strategy]]
name = "hold"
kind = "buy_and_hold"

[[strategy]]
name = "naive"
kind = "naive_forecaster"
params = { margin_bps = 0.0 }
"""


def _backtest(tmp: Path, run_id: str) -> subprocess.Popen[bytes]:
    # The rest of the day (23 h): a backtest is fast now, the kill must still land mid-run.
    args = ["backtest", "--config", str(tmp / "arena.toml"), "--run-id", run_id,
            "--start-minute", "60"]  # fmt: skip
    return start_arena(args, arena_env(tmp, OMP_NUM_THREADS="1"), tmp / f"{run_id}.log")


def _wait_for_progress(log: Path, proc: subprocess.Popen[bytes], min_orders: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text(errors="replace").splitlines():
            if "progress:" in line and int(line.split("orders=")[1].split()[0]) >= min_orders:
                return
        time.sleep(0.1)
    raise AssertionError(f"no progress before the kill: {log.read_text()[-2000:]}")


def test_sigkill_mid_run_then_restart_restores_books_without_reusing_an_order_id(
    tmp_path: Path,
) -> None:
    (tmp_path / "arena.toml").write_text(CONFIG)
    first = _backtest(tmp_path, "crash")
    _wait_for_progress(tmp_path / "crash.log", first, min_orders=6)
    # The kill must come after some of the run is durable (the writer commits 50 ms batches).
    deadline = time.monotonic() + 60
    while first.poll() is None and time.monotonic() < deadline:
        with Journal.open(journal_settings(tmp_path), run_id="probe", readonly=True) as journal:
            if journal.find("fills", {"run_id": "crash"}):
                break
        time.sleep(0.1)
    else:
        raise AssertionError("no fill of the first incarnation reached the journal while it ran")
    assert first.poll() is None, "the backtest ended before it could be killed"
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL

    second = _backtest(tmp_path, "crash")
    assert second.wait(180) == 0, (tmp_path / "crash.log").read_text()[-3000:]

    settings = journal_settings(tmp_path)
    with Journal.open(settings, run_id="crash") as journal:
        runs = journal.find("runs", {"run_id": "crash"}, sort=[("ts_ns", 1), ("seq", 1)])
        starts = [r for r in runs if r["event"] == "started"]
        stops = [r for r in runs if r["event"] == "stopped"]
        assert len(starts) == 2 and len(stops) == 1  # the killed incarnation never stopped
        restored = starts[1]["restored"]
        assert restored["fills_replayed"] > 0 and restored["orders_known"] > 0, restored
        assert restored["mismatch"] is None
        assert starts[0]["incarnation"] != starts[1]["incarnation"]

        orders = journal.find("orders", {"run_id": "crash"})
        ids = Counter(o["client_id"] for o in orders)
        assert ids and max(ids.values()) == 1, "a client order id was sent twice"
        assert {o["incarnation"] for o in orders} == {s["incarnation"] for s in starts}
        # Nothing decided twice: the second incarnation resumed after the first one's last event.
        first_orders = [o for o in orders if o["incarnation"] == starts[0]["incarnation"]]
        second_orders = [o for o in orders if o["incarnation"] == starts[1]["incarnation"]]
        assert second_orders and min(o["ts_ns"] for o in second_orders) > max(
            o["ts_ns"] for o in first_orders
        )

        # Books after the restart = every fill of both incarnations; positions match the venue.
        fills = journal.find("fills", {"run_id": "crash"}, sort=[("ts_ns", 1), ("seq", 1)])
        assert len({f["exec_id"] for f in fills}) == len(fills)
        books: dict[str, Ledger] = {}
        for f in fills:
            book = books.setdefault(
                f["strategy"], Ledger(f["strategy"], capital=Decimal("10000.0"))
            )
            book.apply_fill(
                Side(f["side"]), Decimal(f["qty"]), Decimal(f["price"]), Decimal(f["fee"])
            )
        stop = stops[0]
        net = sum((b.qty for b in books.values()), Decimal(0))
        assert Decimal(stop["books_qty"]) == net == Decimal(stop["exchange_qty"])
        latest = journal.latest_equity("crash")
        for name, book in books.items():
            assert Decimal(latest[name]["exact"]["qty"]) == book.qty
            assert Decimal(latest[name]["exact"]["fees"]) == book.fees
