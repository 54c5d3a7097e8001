"""The dashboard API on a journal made by a real short backtest: numbers equal `arena report`'s,
pagination, the live stream, Markdown pages read at request time, and the kill switch's token."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
from cryptoarena.config import Settings
from cryptoarena.dashboard.app import create_app
from cryptoarena.dashboard.throttle import TokenThrottle
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.results.model import Markouts
from cryptoarena.trading.results.report import build_report
from cryptoarena.trading.risk.killswitch import KillSwitch
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.integration.dashboard_kit import RUN_ID, backtest_journal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("dash")
    settings = backtest_journal(tmp)
    site = tmp / "site"
    site.mkdir()
    (site / "about.md").write_text("# About the arena\n\nAI vs classical, after fees.\n")
    return settings


def _client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def test_leaderboard_and_equity_match_the_report(made: Settings) -> None:
    with Journal.open(made, run_id="check", readonly=True) as journal:
        report = build_report(journal, RUN_ID, forecasts=False)
    rows = report.strategies
    with _client(made) as client:
        board = client.get("/api/leaderboard").json()
        assert board["run_id"] == RUN_ID
        assert [r["strategy"] for r in board["rows"]] == [r.name for r in rows]
        for got, want in zip(board["rows"], rows, strict=True):
            assert got["pnl"] == pytest.approx(want.pnl, rel=1e-12, abs=1e-9)
            assert got["fills"] == want.fills
            assert got["max_drawdown_pct"] == pytest.approx(want.max_drawdown * 100)
        assert any(r["is_ai"] for r in board["rows"])
        # The same sentence and headline interval as `arena report`.
        assert board["sentence"] == report.verdict.sentence
        if report.verdict.ci is not None:
            assert board["comparison"]["ci_low_bp_day"] == pytest.approx(report.verdict.ci[0])
            assert board["comparison"]["ci_high_bp_day"] == pytest.approx(report.verdict.ci[1])
        assert {i["rival"] for i in board["intervals"]} == {
            c.versus for c in report.verdict.comparisons
        }

        curves = client.get("/api/equity", params={"points": 40}).json()
        assert {c["strategy"] for c in curves["series"]} == {r.name for r in rows}
        for c in curves["series"]:
            assert 0 < len(c["points"]) <= 40
            ts = [p["t"] for p in c["points"]]
            assert ts == sorted(ts)
        # The last point of each curve is the strategy's final equity.
        final = {r.name: r.equity for r in rows}
        full = client.get("/api/equity", params={"points": 2000}).json()
        for c in full["series"]:
            assert c["points"][-1]["y"] == pytest.approx(final[c["strategy"]])


def test_lists_page_and_views_answer(made: Settings) -> None:
    with _client(made) as client:
        runs = client.get("/api/runs").json()
        assert runs["total"] == 1 and runs["items"][0]["ended_by"]
        assert runs["items"][0]["running"] is False
        everything = client.get("/api/fills", params={"limit": 500}).json()
        assert everything["total"] == len(everything["items"]) > 3
        page = client.get("/api/fills", params={"limit": 2, "offset": 1}).json()
        assert [f["id"] for f in page["items"]] == [f["id"] for f in everything["items"][1:3]]
        assert client.get("/api/fills", params={"limit": 0}).status_code == 422
        detail = client.get("/api/strategies/buy_hold").json()
        assert detail["candles"] and detail["fills"] and detail["row"]["strategy"] == "buy_hold"
        assert client.get("/api/strategies/nope").status_code == 404
        fc = client.get("/api/forecasts").json()
        assert fc["predictions"] and len(fc["predictions"][-1]["path"]) == 15
        assert fc["accuracy"]["resolved"] > 0
        status = client.get("/api/status").json()
        assert {b["state"] for b in status["bots"]} == {"stopped"}
        assert client.get("/api/risk").json()["limits"]["strategy"]["max_drawdown"] > 0
        assert client.get("/api/runs", params={"run_id": "../x"}).status_code == 200
        assert client.get("/api/leaderboard", params={"run_id": "../x"}).status_code == 422
        assert client.get("/api/leaderboard", params={"run_id": "nope"}).status_code == 404


def test_the_strategy_page_shows_the_reports_markouts(made: Settings) -> None:
    with Journal.open(made, run_id="check", readonly=True) as journal:
        report = build_report(journal, RUN_ID, forecasts=False)
    with_markouts = [r for r in report.strategies if r.markouts is not None]
    assert with_markouts, "the backtest must fill for markouts to exist"
    with _client(made) as client:
        for row in report.strategies:
            detail = client.get(f"/api/strategies/{row.name}").json()
            got = (
                None if detail["markouts"] is None else Markouts.model_validate(detail["markouts"])
            )
            assert got == row.markouts, row.name


RUN_ROUTES = ["/api/leaderboard", "/api/equity", "/api/fills", "/api/positions",
              "/api/strategies/buy_hold", "/api/forecasts", "/api/models", "/api/risk/events",
              "/api/risk"]  # fmt: skip


def test_every_run_route_answers_404_for_an_unknown_run(made: Settings) -> None:
    with _client(made) as client:
        for route in RUN_ROUTES:
            assert client.get(route).status_code == 200, route  # the run that exists
        got = {route: client.get(route, params={"run_id": "nope"}) for route in RUN_ROUTES}
    assert {r: g.status_code for r, g in got.items()} == dict.fromkeys(RUN_ROUTES, 404)
    assert all("nope" in g.json()["detail"] for g in got.values())


def test_pages_are_read_at_request_time(made: Settings) -> None:
    site = Path(made.dashboard.site_dir)
    with _client(made) as client:
        assert [p["name"] for p in client.get("/api/pages").json()] == ["about"]
        (site / "updates.md").write_text("# Updates\n\n<script>alert(1)</script>\n")
        assert [p["title"] for p in client.get("/api/pages").json()] == [
            "About the arena",
            "Updates",
        ]
        body = client.get("/api/pages/updates").json()["html"]
        assert "<script>" not in body and "&lt;script&gt;" in body
        assert client.get("/api/pages/..%2Fsecret").status_code == 404
    (site / "updates.md").unlink()


def test_kill_switch_needs_the_token(made: Settings) -> None:
    with _client(made) as client:
        refused = client.post("/api/kill", json={"action": "engage"})
        assert refused.status_code == 403 and "no kill token" in refused.json()["detail"]
    armed = made.model_copy(
        update={"trading": made.trading.model_copy(update={"kill_token": SecretStr("s3cret")})}
    )
    with _client(armed) as client:
        assert client.post("/api/kill", json={"action": "engage", "token": "x"}).status_code == 403
        assert KillSwitch(Path(made.trading.kill_file), None).status() is None
        ok = client.post("/api/kill", json={"action": "engage", "token": "s3cret"})
        assert ok.status_code == 200 and ok.json()["engaged"] is True
        assert {b["state"] for b in client.get("/api/status").json()["bots"]} == {"killed"}
        assert client.post("/api/kill", json={"action": "release"}).status_code == 403
        released = client.post("/api/kill", json={"action": "release", "token": "s3cret"})
        assert released.json()["engaged"] is False
    # A release is a record signed with the token (the workers verify it), not a deleted file,
    # and says who asked for it (the workers journal it as such).
    switch = KillSwitch(Path(made.trading.kill_file), SecretStr("s3cret"))
    doc = switch.read()
    assert doc is not None and doc["engaged"] is False and switch.verified(doc)
    assert doc["by"] == "dashboard"


def test_wrong_kill_tokens_are_throttled_and_logged_in_aggregate(
    made: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: 200 wrong tokens were 200 answers of 403 and 200 WARNING lines.
    armed = made.model_copy(
        update={"trading": made.trading.model_copy(update={"kill_token": SecretStr("s3cret")})}
    )
    switch = KillSwitch(Path(made.trading.kill_file), SecretStr("s3cret"))
    assert switch.status() is None  # not engaged to begin with
    now = [1000.0]  # the throttle's clock, moved by the test (the server's speed is not)
    app = create_app(armed)
    board = armed.dashboard
    assert board.kill_max_failures == 5 and board.kill_lockout_s == 60.0  # the defaults
    app.state.kill_throttle = TokenThrottle(
        board.kill_max_failures, board.kill_failure_window_s, board.kill_lockout_s, lambda: now[0]
    )
    with TestClient(app) as client, caplog.at_level("WARNING", logger="cryptoarena.dashboard"):
        wrong = [
            client.post("/api/kill", json={"action": "engage", "token": f"guess{i}"})
            for i in range(200)
        ]
        assert [r.status_code for r in wrong] == [403] * 5 + [429] * 195
        assert wrong[-1].headers["retry-after"] == "60"
        now[0] += 30
        locked = client.post("/api/kill", json={"action": "engage", "token": "s3cret"})
        assert locked.status_code == 429  # the right token waits too: no oracle while locked
        assert locked.headers["retry-after"] == "30"
        assert switch.status() is None
        now[0] += 30  # the lockout is over: the right token works again
        ok = client.post("/api/kill", json={"action": "engage", "token": "s3cret"})
        assert ok.status_code == 200 and ok.json()["engaged"] is True
        released = client.post("/api/kill", json={"action": "release", "token": "s3cret"})
        assert released.status_code == 200 and released.json()["engaged"] is False
    # Warnings only: the client's exit (after caplog's level is restored) may stop a registry
    # read, which is logged at info.
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("cryptoarena.dashboard") and r.levelno >= logging.WARNING
    ]
    assert len(lines) == 3, lines  # the first refusal, the lockout, its end
    assert "5 wrong tokens" in lines[1] and "locked for 60 s" in lines[1]
    assert "196 requests refused with 429" in lines[2]  # 195 guesses and the right token
    assert not any("s3cret" in m or "guess" in m for m in lines)


@pytest.mark.parametrize("with_markout", [False, True], ids=["fill", "markout-then-fill"])
def test_a_journaled_fill_is_pushed_to_the_stream(made: Settings, with_markout: bool) -> None:
    received: list[dict[str, object]] = []
    subscribed = threading.Event()  # the hub sends `hello` once this stream is subscribed
    with _client(made) as client:
        last = client.get("/api/fills", params={"limit": 1}).json()["items"][0]

        def write_fill() -> None:
            if not subscribed.wait(20):
                return  # the assertion below reports the missing stream
            with Journal.open(made, run_id=RUN_ID) as journal:
                if with_markout:  # a kind the stream does not push, in the same poll
                    journal.record("markouts", {"strategy": "sma_cross", "side": "Sell",
                                                "bps": [1.0, None, None], "horizons_s": [1, 5, 15],
                                                "ts_ns": last["ts_ns"]})  # fmt: skip
                journal.record("fills", {"strategy": "sma_cross", "side": "Sell",
                                         "price": "9999.5", "qty": "0.001", "fee": "0.01",
                                         "realised": "0", "ts_ns": last["ts_ns"] + 10**9})  # fmt: skip

        threading.Thread(target=write_fill).start()
        with client.stream("GET", "/api/stream") as response:
            event = None
            deadline = time.monotonic() + 20
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                    if event == "hello":
                        subscribed.set()
                elif line.startswith("data: ") and event == "fill":
                    received.append(json.loads(line[6:]))
                    break
                assert time.monotonic() < deadline, "no fill event within 20 s"
    assert received[0]["price"] == 9999.5 and received[0]["strategy"] == "sma_cross"


def test_the_tail_follows_inserts_and_in_place_updates(tmp_path: Path) -> None:
    """A forecast's realised price is written later, in place: the read model picks it up."""
    from cryptoarena.dashboard.tail import EmbeddedTail

    settings = Settings(mongo={"embedded_dir": tmp_path / "journal"})  # type: ignore[arg-type]
    tail = EmbeddedTail(settings.mongo.embedded_dir, settings.mongo.database)
    tailed = ("runs", "equity", "fills", "predictions", "risk_events", "markouts")
    assert tail.poll() == {c: [] for c in tailed}
    with Journal.open(settings, run_id="t1") as journal:
        pid = journal.record("predictions", {"ts_ns": 5, "base_price": 100.0,
                                             "log_returns": [0.001], "realised_price": None})  # fmt: skip
        journal.record("fills", {"strategy": "a", "price": "1", "qty": "1", "ts_ns": 9})
        journal.record("fills", {"strategy": "a", "price": "2", "qty": "1", "ts_ns": 7})
        assert journal.sync(10)
        first = tail.poll()
        assert [p["realised_price"] for p in first["predictions"]] == [None]
        assert [f["ts_ns"] for f in first["fills"]] == [9, 7]
        journal.set_prediction_outcome(pid, 101.5, 20)
        assert journal.sync(10)
        second = tail.poll()
    assert [p["realised_price"] for p in second["predictions"]] == [101.5]
    assert second["fills"] == []
    tail.close()

    from cryptoarena.dashboard.memory import MemoryStore

    store = MemoryStore()
    store.apply(first)
    new = store.apply(second)
    assert new == []  # an update is not a new forecast
    data = store.runs["t1"]
    assert [f["ts_ns"] for f in data.fills.newest(None)[0]] == [7, 9]  # kept in time order
    assert next(iter(data.predictions.values()))["realised_price"] == 101.5


def test_the_query_tail_for_mongodb_follows_the_latest_run(made: Settings) -> None:
    """The MongoDB path (time windows through the journal's queries), here on the embedded
    store."""
    from cryptoarena.dashboard.reader import DashboardReader
    from cryptoarena.dashboard.tail import QueryTail

    with Journal.open(made, run_id="reader", readonly=True) as journal:
        reader = DashboardReader(journal, QueryTail(journal), embedded=False)
        reader.poll()
        assert reader.latest_run_id() == RUN_ID
        # The history is read through the journal's indexes; the tail starts at the present.
        fills = journal.count("fills", {"run_id": RUN_ID})
        assert reader.fills(RUN_ID, None, 1, 0).total == fills
        assert reader.poll() == []  # nothing new
        with Journal.open(made, run_id=RUN_ID) as writer:
            last = reader.fills(RUN_ID, None, 1, 0).items[0]
            fid = writer.record("fills", {"strategy": "macd", "price": "1", "qty": "1",
                                          "ts_ns": last.ts_ns})  # fmt: skip
        new = reader.poll()
        assert [(c, d["_id"]) for c, d in new] == [("fills", fid)]
        rows = build_report(journal, RUN_ID, forecasts=False).strategies
        assert [r.strategy for r in reader.leaderboard(RUN_ID).rows] == [r.name for r in rows]


def test_in_or_out_of_sample_is_what_the_run_recorded(tmp_path: Path) -> None:
    """The overview's sample line is `arena report`'s, from the run's start record (the
    registry's training span is only the fallback for runs that did not record it)."""
    from cryptoarena.dashboard.reader import DashboardReader
    from cryptoarena.dashboard.tail import EmbeddedTail
    from cryptoarena.trading.results.render import sample_line

    settings = Settings(mongo={"embedded_dir": tmp_path / "journal"})  # type: ignore[arg-type]
    until = 1_582_333_200_000_000_000
    with Journal.open(settings, run_id="s1") as journal:
        journal.record("runs", {"event": "started", "ts_ns": until - 10**12, "in_sample": True,
                                "model_valid_until_ns": until, "arena": {"capital": 1000.0},
                                "strategies": [{"name": "ai", "family": "ai"}]})  # fmt: skip
        for i in range(5):
            journal.record("equity", {"strategy": "ai", "ts_ns": until - 10**12 + i * 5 * 10**9,
                                      "equity": 1000.0 + i, "qty": 0.0})  # fmt: skip
        assert journal.sync(10)
    with Journal.open(settings, run_id="check", readonly=True) as journal:
        want = sample_line(build_report(journal, "s1", forecasts=False))
        reader = DashboardReader(journal, EmbeddedTail(settings.mongo.embedded_dir, "cryptoarena"))
        reader.poll()
        got = reader.leaderboard("s1").sample
        reader.close()
    assert want is not None and want.startswith("IN-SAMPLE")
    assert got == want


def test_a_stop_waits_for_the_background_reads_before_closing(
    made: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up reads the journal in a thread: a stop that closed the journal (and let the
    interpreter exit) under that read crashed the process now and then (SIGSEGV after Ctrl-C)."""
    import cryptoarena.dashboard.app as dashboard_app

    started, finished = threading.Event(), threading.Event()

    def slow_warm(reader: object) -> None:  # the first leaderboard of a long run
        started.set()
        time.sleep(0.5)
        finished.set()

    monkeypatch.setattr(dashboard_app, "_warm", slow_warm)
    with _client(made):
        assert started.wait(30), "the warm-up never started"
        assert not finished.is_set()
    assert finished.is_set(), "the stop closed the journal while the warm-up was reading it"


def test_a_long_runs_leaderboard_is_built_in_a_child_process(made: Settings) -> None:
    """Once a run's report costs more than CHILD_ABOVE_S of CPU, the next one is built in a
    child process (the month's report held the routes for hundreds of ms in-process): the same
    board as in-process, its CPU counted for the recompute's pace; a failing child raises."""
    import os

    from cryptoarena.dashboard.reader import DashboardReader, leaderboard_of
    from cryptoarena.dashboard.report_child import CHILD_ABOVE_S, NICENESS, ReportChild
    from cryptoarena.dashboard.tail import EmbeddedTail

    child = ReportChild(made.mongo)
    with Journal.open(made, run_id="reader", readonly=True) as journal:
        reader = DashboardReader(
            journal, EmbeddedTail(made.mongo.embedded_dir, "cryptoarena"), report_child=child
        )
        reader.poll()
        here, elsewhere = reader._leaderboard(RUN_ID)  # a first report: in-process
        assert elsewhere == 0.0 and RUN_ID in reader._board_cpu
        reader._board_cpu[RUN_ID] = CHILD_ABOVE_S * 2  # as if it had cost that: a long run
        board, cpu = reader._leaderboard(RUN_ID)
        assert cpu > 0.0 and reader._board_cpu[RUN_ID] == cpu  # the child's own CPU time
        assert board == here == leaderboard_of(journal, RUN_ID)
        # Background work: the child lowers its own priority below the dashboard's.
        assert child.build(RUN_ID).nice == min(19, os.nice(0) + NICENESS)
        reader.close()
    with pytest.raises(RuntimeError, match="report child failed"):
        ReportChild(made.mongo).build("no-such-run")
