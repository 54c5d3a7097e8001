"""Operator alerts (cryptoarena.alerts) through the real apprise to a real local JSON webhook."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptoarena import alerts
from cryptoarena.alerts import AlertConfig, AlertConfigError, Alerter, JournalTap
from cryptoarena.config import AlertSettings, Settings, TradingSettings
from cryptoarena.data.feed import FeedGap
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.journal.journal import JournalConfig
from cryptoarena.trading.journal.writer import WriterConfig
from pydantic import SecretStr

from tests.integration.journal_helpers import embedded_settings, sqlite_locked

pytestmark = pytest.mark.timeout(120)


class Receiver:
    """A JSON webhook on 127.0.0.1: what apprise's ``json://`` posts to. ``hold`` keeps every
    request waiting (a stuck target) until it is set; ``status`` is the HTTP answer."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.arrived.set()
                receiver.hold.wait(30)
                receiver.posts.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def titles(self) -> list[str]:
        return [str(p.get("title", "")) for p in self.posts]

    def wait(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.posts):
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook never saw it; got {self.titles()}")
            time.sleep(0.02)

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def alerter(receiver: Receiver) -> Iterator[Alerter]:
    a = Alerter([receiver.url], AlertConfig(poll_s=0.1))
    previous = alerts.install(a)
    yield a
    alerts.install(previous if previous is not a else None)
    a.close(2.0)


def has(title: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda posts: any(title in str(p.get("title")) for p in posts)


def test_an_alert_reaches_the_webhook(receiver: Receiver, alerter: Alerter) -> None:
    assert alerter.notify("halt", "sma halted", "daily loss 3.1 % > 3 %", level="failure")
    receiver.wait(has("sma halted"))
    post = receiver.posts[0]
    assert post["title"] == "cryptoarena: sma halted"
    assert post["message"] == "daily loss 3.1 % > 3 %" and post["type"] == "failure"


def test_duplicates_and_bursts_are_dropped_on_a_fake_clock(receiver: Receiver) -> None:
    now = [1000.0]
    a = Alerter([receiver.url], AlertConfig(dedupe_s=60, max_per_minute=3), clock=lambda: now[0])
    try:
        assert a.notify("feed_gap", "gap") and not a.notify("feed_gap", "gap")  # duplicate
        assert a.notify("halt", "a") and a.notify("halt", "b")
        assert not a.notify("halt", "c")  # 4th in a minute: over the rate limit
        now[0] += 61
        assert a.notify("feed_gap", "gap")  # the window passed: said again
        receiver.wait(lambda posts: len(posts) == 4)
        assert a.stats["duplicates"] == 1 and a.stats["rate_limited"] == 1
        assert "1 other alert(s) dropped" in receiver.posts[-1]["message"]
    finally:
        a.close(2.0)


def test_a_stuck_target_never_blocks_the_caller(receiver: Receiver) -> None:
    receiver.hold.clear()  # the webhook accepts the connection and never answers (yet)
    a = Alerter([receiver.url], AlertConfig(queue_size=4, dedupe_s=0, max_per_minute=1000))
    try:
        assert a.notify("halt", "first")
        assert receiver.arrived.wait(10)  # the alert thread is now stuck in that request
        results = [a.notify("halt", f"more {i}") for i in range(20)]  # all return at once
        assert results.count(True) == 4 and a.stats["dropped"] == 16  # queue full: dropped
    finally:
        receiver.hold.set()
        a.close(5.0)
    receiver.wait(lambda posts: len(posts) == 5)


def test_a_failing_target_costs_a_log_line_not_an_exception(receiver: Receiver) -> None:
    receiver.status = 500
    a = Alerter([receiver.url])
    try:
        assert a.notify("kill", "kill switch engaged")
        deadline = time.monotonic() + 20
        while a.stats["failed"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert a.stats["failed"] == 1
    finally:
        a.close(2.0)


def test_bad_urls_are_refused_without_printing_the_token() -> None:
    with pytest.raises(AlertConfigError, match=r"URL 1 \(nosuch://…\)") as err:
        Alerter(["nosuch://s3cret-token@host"])
    assert "s3cret" not in str(err.value)
    assert not Alerter().enabled and not Alerter().notify("halt", "x")  # no URL: a no-op


def test_settings_take_a_list_or_separated_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptoarena.config import load_settings

    monkeypatch.setenv("ARENA_ALERTS__URLS", "json://127.0.0.1:1/a  tgram://bot/chat")
    urls = [u.get_secret_value() for u in load_settings().alerts.urls]
    assert urls == ["json://127.0.0.1:1/a", "tgram://bot/chat"]
    monkeypatch.setenv("ARENA_ALERTS__URLS", '["mailto://u:p@example.org?to=a@x.org,b@x.org"]')
    assert len(load_settings().alerts.urls) == 1
    assert "tgram" not in repr(load_settings())  # secrets stay hidden


def test_journal_tap_turns_halts_and_the_kill_switch_into_alerts(
    receiver: Receiver, alerter: Alerter, tmp_path: Path
) -> None:
    settings = embedded_settings(tmp_path)
    journal = alerts.tap(Journal.open(settings, run_id="tap1"), alerter)
    assert isinstance(journal, JournalTap)
    try:
        journal.record("risk_events", {"type": "veto", "strategy": "sma", "reason": "rate"})
        journal.record("risk_events", {"type": "halt", "strategy": "sma", "reason": "loss 3 %"})
        journal.record("risk_events", {"type": "kill", "strategy": None, "reason": "drill"})
        journal.record("model_events", {"type": "health", "healthy": False})
        receiver.wait(lambda posts: len(posts) == 3)
        assert journal.flush(10)  # everything still reaches the journal itself
        assert journal.count("risk_events", {"run_id": "tap1"}) == 3
    finally:
        journal.close()
    titles = receiver.titles()
    assert any("sma halted" in t for t in titles)
    assert any("kill switch engaged" in t for t in titles)
    assert any("model server unhealthy" in t for t in titles)
    assert not any("veto" in t for t in titles)
    assert "run tap1" in receiver.posts[0]["message"]


@pytest.mark.slow
def test_a_journal_outage_is_reported_and_its_end_too(
    receiver: Receiver, alerter: Alerter, tmp_path: Path
) -> None:
    settings = embedded_settings(tmp_path)
    config = JournalConfig(writer=WriterConfig(retry_initial_s=0.1, retry_max_s=0.5))
    journal = alerts.tap(Journal.open(settings, run_id="out1", config=config), alerter)
    try:
        with sqlite_locked(settings, "fills"):  # a real 'database is locked' for the writer
            journal.record("fills", {"strategy": "sma", "client_id": "c1", "qty": 1.0})
            receiver.wait(has("journal database unavailable"), timeout=40)
        journal.record("fills", {"strategy": "sma", "client_id": "c2", "qty": 1.0})
        receiver.wait(has("journal database back"), timeout=40)
    finally:
        journal.close()


def test_feed_gap_drift_and_champion_notices(receiver: Receiver, alerter: Alerter) -> None:
    gap = FeedGap(0, 3_000_000_000, "socket closed", recovered=0, complete=False, missed=12)
    assert alerts.feed_gap("BTCUSDT", gap)
    assert alerts.drift_trigger("btcusdt-15s", {"reasons": ["feature drift 0.61 > 0.5"]})
    assert alerts.new_champion("btcusdt-15s", "7", "beats persistence and the champion")
    receiver.wait(lambda posts: len(posts) == 3)
    messages = {p["title"]: p["message"] for p in receiver.posts}
    assert "12 trades missed" in messages["cryptoarena: BTCUSDT feed gap"]
    assert "0.61" in messages["cryptoarena: btcusdt-15s: drift, retrain triggered"]
    assert messages["cryptoarena: btcusdt-15s: new champion v7"].startswith("beats")


@pytest.mark.slow
async def test_a_live_session_alerts_the_operator_of_the_kill_switch(
    receiver: Receiver, tmp_path: Path
) -> None:
    """The wiring in trading/engine/session.py: a live session (Bybit public feed from the fake
    exchange, paper orders) with the kill switch engaged tells the webhook."""
    from cryptoarena.trading.config import all_strategies_config
    from cryptoarena.trading.engine.session import ExchangeKind, SessionOptions, Source, run_session
    from cryptoarena.trading.risk.killswitch import KillSwitch

    from tests.fakes.bybit_server import FakeBybit

    kill_file = tmp_path / "arena.kill"
    KillSwitch(kill_file, None).engage(None, "operator drill")
    with FakeBybit() as fake:
        base = embedded_settings(tmp_path)
        settings = Settings(
            mongo=base.mongo,
            home=tmp_path,
            trading=TradingSettings(kill_file=kill_file),
            alerts=AlertSettings(urls=[SecretStr(receiver.url)]),
            bybit={"rest_url": fake.http_url, "ws_public_url": fake.ws_url()},  # type: ignore[arg-type]
        )
        config = all_strategies_config(bar_size="5s", fee_rate=0.0001, equity_every_s=5.0)
        options = SessionOptions(source=Source.BYBIT, exchange=ExchangeKind.PAPER, run_id="live-k")
        session = asyncio.create_task(run_session(settings, config, options, handle_signals=False))
        try:
            await asyncio.to_thread(receiver.wait, has("kill switch engaged"), 60)
        finally:
            session.cancel()
            await asyncio.gather(session, return_exceptions=True)
            alerts.install(None)
    assert "operator drill" in receiver.posts[0]["message"]
