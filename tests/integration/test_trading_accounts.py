"""Strategies bound to their own Bybit (sub-)accounts: each one's orders are signed with its own
key and land in its own account; a strategy bound to none trades paper on the same tape.

Real pybit (REST + private WS) and the real BybitFeed talk to the fake Bybit server, which
holds two accounts; the market is the shipped real tape, re-stamped to now.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from cryptoarena.config import Settings
from cryptoarena.data.records import Trade
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.engine.session import (
    ExchangeKind,
    SessionOptions,
    Source,
    make_exchange,
    make_feed,
)
from cryptoarena.trading.exchange.accounts import AccountsExchange
from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig
from cryptoarena.trading.exchange.venue import VenueConfig
from cryptoarena.trading.journal import Journal

from tests.fakes.bybit_account import FakeAccounts
from tests.fakes.bybit_server import FakeBybit
from tests.integration.trading_kit import (
    ARENA,
    ROOT,
    arena_env,
    journal_settings,
    run_worker,
    tape_slice,
)

pytestmark = [pytest.mark.timeout(120)]

KEYS = {"alpha": ("key-alpha-1Qw", "secret-alpha-9Zt"), "beta": ("key-beta-2Er", "secret-beta-8Yu")}
CONFIG = {
    "arena": {"min_trade_fraction": 0.02, "equity_every_s": 1.0, "order_timeout_s": 3.0},
    "risk": {"strategy": {"max_orders_per_minute": 60}},
    "strategy": [
        {"name": "hold", "kind": "buy_and_hold", "account": "alpha"},
        {"name": "sma", "kind": "sma_cross", "account": "beta",
         "params": {"fast": 2, "slow": 4, "bar_size": "1s"}},
        {"name": "paper_hold", "kind": "buy_and_hold"},
    ],
}  # fmt: skip


class Market(threading.Thread):
    """Pushes real trades, re-stamped to now, 20 per 100 ms, until stopped."""

    def __init__(self, accounts: FakeAccounts) -> None:
        super().__init__(daemon=True)
        tape = tape_slice(3600, 30)
        self.rows = list(zip(tape["price"].tolist(), tape["size"].tolist(),
                             tape["side"].tolist(), tape["trade_id"].tolist(), strict=True))  # fmt: skip
        self.accounts = accounts
        self.stop = threading.Event()

    def run(self) -> None:
        # Round after round until stopped: a market that ends mid-test leaves an order (a flip's
        # entry, sent after its close) without liquidity.
        for rnd in range(1000):
            for i in range(0, len(self.rows), 20):
                if self.stop.is_set():
                    return
                now = time.time_ns()
                batch = [Trade(now + k * 1000, p, q, int(s), f"r{rnd}-{tid}", "BTCUSDT")
                         for k, (p, q, s, tid) in enumerate(self.rows[i : i + 20])]  # fmt: skip
                self.accounts.trade(batch)
                time.sleep(0.1)


def _settings(tmp: Path, fake: FakeBybit) -> Settings:
    return Settings(
        home=tmp,
        mongo={"embedded_dir": tmp / "journal"},  # type: ignore[arg-type]
        trading={"kill_file": tmp / "arena.kill"},  # type: ignore[arg-type]
        bybit={  # type: ignore[arg-type]
            "rest_url": fake.http_url,
            "ws_public_url": fake.ws_url(),
            "ws_private_url": fake.http_url.replace("http://", "ws://"),
        },
        accounts={n: {"api_key": k, "api_secret": s} for n, (k, s) in KEYS.items()},  # type: ignore[arg-type]
    )


async def _trade(settings: Settings, accounts: FakeAccounts, run_id: str) -> Worker:
    config = parse_arena_config(CONFIG)
    options = SessionOptions(source=Source.BYBIT, exchange=ExchangeKind.BYBIT_DEMO)
    feed, clock = make_feed(settings, options, "BTCUSDT")
    exchange = make_exchange(settings, config, ExchangeKind.BYBIT_DEMO, clock, False)
    assert isinstance(exchange, AccountsExchange)
    assert set(exchange.members) == {"alpha", "beta", "paper"}
    with Journal.open(settings, run_id=run_id, clock=clock) as journal:
        worker = Worker(config, feed=feed, exchange=exchange, journal=journal, clock=clock,
                        run_id=run_id, source_name="bybit", durable_orders=True)  # fmt: skip
        task = asyncio.create_task(worker.run())
        # Live time on a fake venue: generous, because a loaded 2-core machine (CI beside other
        # work) can take a minute to see the flip's close and entry both land.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not task.done():
            books = worker.books
            if (
                len(accounts["beta"].rest.received("/v5/order/create")) >= 2
                and all(books[n].fills for n in ("hold", "paper_hold"))
                and books["sma"].qty != 0  # a flip's close leaves it flat until the entry
                and worker.router is not None
                and not worker.router.ledger.in_flight
            ):
                break
            await asyncio.sleep(0.1)
        worker.request_stop("test done")
        await asyncio.wait_for(task, 30)
        await feed.close()
    return worker


@pytest.mark.slow
def test_each_strategy_trades_on_its_own_account_or_paper(tmp_path: Path) -> None:
    accounts = FakeAccounts(KEYS, VenueConfig(initial_balance=Decimal(10_000), latency_ms=20))
    with FakeBybit(plugins=accounts.plugins) as fake:
        market = Market(accounts)
        market.start()
        try:
            settings = _settings(tmp_path, fake)
            worker = asyncio.run(_trade(settings, accounts, "accounts"))
        finally:
            market.stop.set()
            market.join(5)
    books, router = worker.books, worker.router
    assert router is not None
    index = {name: f"{i:02d}" for i, name in enumerate(books)}
    for account, strategy in (("alpha", "hold"), ("beta", "sma")):
        creates = accounts[account].rest.received("/v5/order/create")
        assert creates, f"no order reached account {account}"
        for rec in creates:
            # Signed with this account's key (the fake verified the signature), for its strategy.
            assert rec.headers["X-BAPI-API-KEY"] == KEYS[account][0] and rec.ret_code == 0
            assert rec.json()["orderLinkId"].split("-")[1] == index[strategy]
        # The account's position is its strategy's book, nobody else's.
        venue = accounts[account].matching.venue
        assert venue.account.position("BTCUSDT").qty == books[strategy].qty != 0
    # The unbound strategy traded paper: its fills are in its book, none of its orders on Bybit.
    assert books["paper_hold"].fills and books["paper_hold"].qty > 0
    bybit_ids = {r.json()["orderLinkId"] for a in KEYS for r in accounts[a].rest.received("/v5/order/create")}  # fmt: skip
    paper_ids = {cid for cid, s in router.ledger.owner.items() if s == "paper_hold"}
    assert paper_ids and not paper_ids & bybit_ids
    with Journal.open(settings, run_id="accounts") as journal:
        (started,) = journal.find("runs", {"run_id": "accounts", "event": "started"})
        assert started["accounts"] == {"hold": "alpha", "sma": "beta", "paper_hold": "paper"}
        assert started["restored"]["mismatch"] is None
        assert set(started["restored"]["accounts"]) == {"alpha", "beta", "paper"}
        fills = journal.find("fills", {"run_id": "accounts"})
        assert {f["strategy"] for f in fills} == {"hold", "sma", "paper_hold"}


def test_positions_are_reconciled_per_account_not_netted(tmp_path: Path) -> None:
    """Long on one account, short on the other, books flat: the net agrees, the accounts do not.
    Paper venues stand in for the two accounts (the reconciliation is the same code)."""
    config = parse_arena_config({"strategy": [
        {"name": "hold", "kind": "buy_and_hold", "account": "alpha"},
        {"name": "hold2", "kind": "buy_and_hold", "account": "beta"},
    ]})  # fmt: skip
    members = {n: PaperExchange(PaperExchangeConfig(name=n)) for n in ("alpha", "beta")}
    for account, qty in (("alpha", "0.010"), ("beta", "-0.010")):
        state = members[account].venue.account.position_state("BTCUSDT")
        state.qty, state.avg_price = Decimal(qty), Decimal(60_000)
    exchange = AccountsExchange(members, {"hold": "alpha", "hold2": "beta"}, name="two-accounts")
    with Journal.open(journal_settings(tmp_path), run_id="netted") as journal:
        _, result = asyncio.run(
            run_worker(config, tape_slice(0, 1), journal, run_id="netted", exchange=exchange)
        )
    restored = result.restored
    assert Decimal(restored["exchange_qty"]) == Decimal(restored["books_qty"]) == 0
    assert "account alpha: position 0.010 != books 0" in restored["mismatch"]
    assert "account beta: position -0.010 != books 0" in restored["mismatch"]
    assert result.orders == 0  # halted: a human decides


def test_arena_trade_names_the_missing_key_variable_and_touches_nothing(tmp_path: Path) -> None:
    (tmp_path / "arena.toml").write_text(
        '[[strategy]]\nname = "hold"\nkind = "buy_and_hold"\naccount = "sma"\n'
    )
    args = ["trade", "--config", str(tmp_path / "arena.toml"), "--source", "replay",
            "--exchange", "bybit-demo", "--minutes", "1"]  # fmt: skip
    done = subprocess.run([ARENA, *args], cwd=ROOT, env=arena_env(tmp_path),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "ARENA_ACCOUNTS__SMA__API_KEY is not set" in done.stderr
    assert not (tmp_path / "journal").exists()  # refused before anything was opened


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_maker_strategy_quotes_post_only_on_its_account_through_pybit(tmp_path: Path) -> None:
    """A maker strategy bound to a (fake) Bybit account: its targets go out through the real
    pybit client as PostOnly limits at the touch, re-priced with /v5/order/amend and withdrawn
    with /v5/order/cancel by orderLinkId; what filled filled as a maker; the account's position
    is the book's."""
    config = parse_arena_config({
        "arena": {"min_trade_fraction": 0.02, "equity_every_s": 1.0},
        "risk": {"strategy": {"max_orders_per_minute": 60}},
        "strategy": [{"name": "quote", "kind": "sma_cross", "account": "alpha",
                      "params": {"fast": 2, "slow": 4, "bar_size": "1s", "execution": "maker",
                                 "maker_ttl_s": 2.0}}],
    })  # fmt: skip
    accounts = FakeAccounts(KEYS, VenueConfig(initial_balance=Decimal(10_000), latency_ms=20))
    with FakeBybit(plugins=accounts.plugins) as fake:
        market = Market(accounts)
        market.start()
        try:
            settings = _settings(tmp_path, fake)
            rest = accounts["alpha"].rest

            async def trade() -> Worker:
                options = SessionOptions(source=Source.BYBIT, exchange=ExchangeKind.BYBIT_DEMO)
                feed, clock = make_feed(settings, options, "BTCUSDT")
                exchange = make_exchange(settings, config, ExchangeKind.BYBIT_DEMO, clock, False)
                with Journal.open(settings, run_id="maker", clock=clock) as journal:
                    worker = Worker(config, feed=feed, exchange=exchange, journal=journal,
                                    clock=clock, run_id="maker", source_name="bybit")  # fmt: skip
                    task = asyncio.create_task(worker.run())
                    # Live time: generous for a loaded machine (usually ~15 s here).
                    deadline = time.monotonic() + 180
                    while time.monotonic() < deadline and not task.done():
                        if (
                            len(rest.received("/v5/order/create")) >= 3
                            and rest.received("/v5/order/amend")
                            and rest.received("/v5/order/cancel")
                        ):
                            break
                        await asyncio.sleep(0.1)
                    worker.request_stop("test done")
                    await asyncio.wait_for(task, 30)
                    await feed.close()
                return worker

            worker = asyncio.run(trade())
        finally:
            market.stop.set()
            market.join(5)
    creates = [r.json() for r in rest.received("/v5/order/create")]
    assert len(creates) >= 3
    assert all(c["orderType"] == "Limit" and c["timeInForce"] == "PostOnly" for c in creates)
    assert all(Decimal(c["price"]) > 0 for c in creates)
    ids = {c["orderLinkId"] for c in creates}
    amends = [r.json() for r in rest.received("/v5/order/amend")]
    cancels = [r.json() for r in rest.received("/v5/order/cancel")]
    assert amends and cancels
    assert {a["orderLinkId"] for a in amends} <= ids and {c["orderLinkId"] for c in cancels} <= ids
    assert all("price" in a for a in amends)
    with Journal.open(settings, run_id="maker") as journal:
        fills = journal.find("fills", {"run_id": "maker"})
    assert all(f["is_maker"] for f in fills)
    venue = accounts["alpha"].matching.venue
    assert venue.account.position("BTCUSDT").qty == worker.books["quote"].qty
