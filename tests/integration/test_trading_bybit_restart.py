"""The worker trading (fake) Bybit sub-accounts, one per strategy, SIGKILLed mid-run and
restarted: the exchange outlives the worker, so the restart must reconcile with what really
happened there, account by account.

Real pybit (REST + private WS) and the real BybitFeed talk to the fake Bybit server in this
process; the market is the shipped real tape, re-stamped to now and pushed as it "happens".
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from cryptoarena.data.records import Trade
from cryptoarena.trading.exchange.models import Side
from cryptoarena.trading.exchange.venue import VenueConfig
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.portfolio.ledger import Ledger

from tests.fakes.bybit_account import FakeAccounts
from tests.fakes.bybit_server import FakeBybit
from tests.integration.trading_kit import arena_env, journal_settings, start_arena, tape_slice

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CONFIG = """
[arena]
fee_rate = 0.0
min_trade_fraction = 0.02
equity_every_s = 1.0
order_timeout_s = 3.0

[risk.strategy]
max_orders_per_minute = 60

[[strategy]]
name = "hold"
kind = "buy_and_hold"
account = "hold"

[[strategy]]
name = "naive"
kind = "naive_forecaster"
params = { margin_bps = 0.0, horizon_s = 2 }
account = "naive"

[[strategy]]
name = "sma"
kind = "sma_cross"
params = { fast = 2, slow = 4, bar_size = "1s" }
account = "sma"
"""
KEYS = {name: (f"key-{name}-7Qx", f"secret-{name}-Zr9") for name in ("hold", "naive", "sma")}


class Market(threading.Thread):
    """Pushes real trades, re-stamped to now, ~20 per 100 ms, until stopped. Holding ``lock``
    holds the market: no trade, so no fill, happens meanwhile."""

    def __init__(self, account: FakeAccounts) -> None:
        super().__init__(daemon=True)
        tape = tape_slice(3600, 120)
        self.rows = list(zip(tape["price"].tolist(), tape["size"].tolist(), tape["side"].tolist(),
                             tape["trade_id"].tolist(), strict=True))  # fmt: skip
        self.account = account
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.pushed = 0

    def run(self) -> None:
        i = 0
        while not self.stop.is_set() and i < len(self.rows):
            with self.lock:
                now = time.time_ns()
                batch = [Trade(now + k * 1000, p, q, int(s), f"r{tid}", "BTCUSDT")
                         for k, (p, q, s, tid) in enumerate(self.rows[i : i + 20])]  # fmt: skip
                self.account.trade(batch)
            i += 20
            self.pushed = i
            time.sleep(0.1)


def _worker(tmp: Path, fake: FakeBybit, log: Path) -> subprocess.Popen[bytes]:
    env = arena_env(
        tmp,
        **{f"ARENA_ACCOUNTS__{n.upper()}__API_KEY": k for n, (k, _) in KEYS.items()},
        **{f"ARENA_ACCOUNTS__{n.upper()}__API_SECRET": s for n, (_, s) in KEYS.items()},
        ARENA_BYBIT__REST_URL=fake.http_url,
        ARENA_BYBIT__WS_PUBLIC_URL=fake.ws_url(),
        ARENA_BYBIT__WS_PRIVATE_URL=fake.http_url.replace("http://", "ws://"),
    )
    args = ["trade", "--config", str(tmp / "arena.toml"), "--source", "bybit",
            "--exchange", "bybit-demo", "--run-id", "bybit-crash"]  # fmt: skip
    return start_arena(args, env, log)


def _orders(accounts: FakeAccounts) -> list[str]:
    return [r.json().get("orderLinkId", "") for name in KEYS
            for r in accounts[name].rest.received("/v5/order/create")]  # fmt: skip


def _working(fake: FakeBybit, accounts: FakeAccounts) -> set[str]:
    """Client ids of the orders working at the exchange now (read on the fake's loop)."""
    return fake.call(
        lambda: {o.client_id for n in KEYS for o in accounts[n].matching.venue.open_orders()}
    )


def _executions(fake: FakeBybit, accounts: FakeAccounts) -> list[dict[str, str]]:
    return fake.call(lambda: [row for n in KEYS for row in accounts[n].matching.executions])


def _kill_with_an_order_working(
    proc: subprocess.Popen[bytes],
    fake: FakeBybit,
    accounts: FakeAccounts,
    market: Market,
    log: Path,
) -> tuple[set[str], set[str]]:
    """SIGKILL the worker once it has sent 6 orders and one of them is still working at the
    exchange, with the market held so that order cannot fill before the worker is dead.
    Returns the working orders' client ids and the exec ids the exchange had at the kill."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_orders(accounts)) >= 6:
            with market.lock:
                working = _working(fake, accounts)
                if working:
                    proc.send_signal(signal.SIGKILL)
                    assert proc.wait(10) == -signal.SIGKILL
                    return working, {r["execId"] for r in _executions(fake, accounts)}
        time.sleep(0.01)
    raise AssertionError(f"no order working at the exchange; worker log: {log.read_text()[-3000:]}")


def _wait(
    predicate: Callable[[], object],
    proc: subprocess.Popen[bytes] | None,
    log: Path,
    timeout: float = 60,
) -> None:
    """Wait until ``predicate()``; fail early if ``proc`` (the worker, when one runs) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"condition not met; worker log: {log.read_text()[-3000:]}")


def test_sigkill_and_restart_against_bybit_reconciles_with_the_exchange(tmp_path: Path) -> None:
    (tmp_path / "arena.toml").write_text(CONFIG)
    log = tmp_path / "worker.log"
    account = FakeAccounts(KEYS, VenueConfig(initial_balance=Decimal(30_000), latency_ms=20))
    with FakeBybit(plugins=account.plugins) as fake:
        market = Market(account)
        market.start()
        try:
            first = _worker(tmp_path, fake, log)
            working, execs_at_kill = _kill_with_an_order_working(first, fake, account, market, log)
            sent_before = len(_orders(account))

            # The market goes on: an order the dead worker left working fills in the gap.
            def gap_fills() -> list[dict[str, str]]:
                return [r for r in _executions(fake, account)
                        if r["orderLinkId"] in working and r["execId"] not in execs_at_kill]  # fmt: skip

            _wait(gap_fills, None, log, timeout=30)
            filled_in_gap = {r["orderLinkId"] for r in gap_fills()}

            second = _worker(tmp_path, fake, log)
            _wait(lambda: len(_orders(account)) >= sent_before + 6, second, log)
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, log.read_text()[-3000:]
        finally:
            market.stop.set()
            market.join(5)
        venue_qty = {n: account[n].matching.venue.account.position("BTCUSDT").qty for n in KEYS}
        venue_filled = {
            cid: account[n].matching.venue.orders[cid].filled_qty
            for n in KEYS
            for cid in filled_in_gap & set(account[n].matching.venue.orders)
        }
        link_ids = _orders(account)

    # The exchange never saw the same client order id twice.
    assert max(Counter(link_ids).values()) == 1
    with Journal.open(journal_settings(tmp_path), run_id="bybit-crash") as journal:
        runs = journal.find("runs", {"run_id": "bybit-crash"}, sort=[("seq", 1)])
        starts = [r for r in runs if r["event"] == "started"]
        (stop,) = [r for r in runs if r["event"] == "stopped"]
        assert len(starts) == 2 and starts[1]["restored"]["mismatch"] is None
        assert starts[1]["accounts"] == {n: n for n in KEYS}
        assert set(starts[1]["restored"]["accounts"]) == set(KEYS)
        assert starts[1]["restored"]["fills_replayed"] > 0
        journaled = {o["client_id"] for o in journal.find("orders", {"run_id": "bybit-crash"})}
        # Every order the exchange got is known to the journal (or was recovered by probing).
        recovered = starts[1]["restored"]["orders_recovered"]
        assert len(set(link_ids) - journaled) <= recovered
        # Books = every fill journaled (including those recovered from the exchange), and each
        # book's position is its own account's position.
        books: dict[str, Ledger] = {}
        for f in journal.find("fills", {"run_id": "bybit-crash"}, sort=[("ts_ns", 1), ("seq", 1)]):
            book = books.setdefault(
                f["strategy"], Ledger(f["strategy"], capital=Decimal("10000.0"))
            )
            book.apply_fill(
                Side(f["side"]), Decimal(f["qty"]), Decimal(f["price"]), Decimal(f["fee"])
            )
        assert {n: books[n].qty if n in books else 0 for n in KEYS} == venue_qty
        # The orders that filled while no worker ran are journaled with all the exchange filled.
        journaled_qty = {
            cid: sum((Decimal(f["qty"]) for f in journal.find(
                "fills", {"run_id": "bybit-crash", "client_id": cid})), Decimal(0))
            for cid in filled_in_gap
        }  # fmt: skip
        assert journaled_qty == venue_filled
        net = sum((b.qty for b in books.values()), Decimal(0))
        assert net == Decimal(stop["books_qty"]) == Decimal(stop["exchange_qty"])
