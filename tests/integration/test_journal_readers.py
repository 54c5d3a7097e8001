"""Readers beside a writer (issue #9 item 5), the read models and windows a report and a restart
use (issue #10 item 5), and the backtest bulk path's documents (issue #12 item 2), on the
embedded store."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from cryptoarena.clock import SimClock
from cryptoarena.trading.journal import Journal, StoreConfig, store
from cryptoarena.trading.journal.spill import SpillLog

from tests.integration.journal_helpers import embedded_settings
from tests.integration.trading_kit import ARENA, ROOT, arena_env

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def _run_events(journal: Journal, clock: SimClock, run_id: str, seconds: int = 180) -> None:
    """A small run: started, equity every 5 s for two strategies, decisions, one fill."""
    journal.record(
        "runs",
        {
            "event": "started",
            "arena": {"capital": 10_000},
            "strategies": [
                {"name": "hold", "family": "reference"},
                {"name": "sma", "family": "classical"},
            ],
        },
    )
    for t in range(0, seconds, 5):
        clock.advance_to(T0 + t * S)
        for i, name in enumerate(("hold", "sma")):
            equity = 10_000.0 + t * (1 + i) / 10
            journal.record("equity", {"strategy": name, "equity": equity, "qty": 0.01, "fills": 1})
            journal.record("decisions", {"strategy": name, "target": 0.5, "reason": "r"})
    journal.record("fills", {"strategy": "sma", "client_id": "c-1", "qty": "0.01"})


def test_report_runs_beside_a_writing_worker(tmp_path: Path) -> None:
    """`arena report` while another process writes the journal: no JournalLockedError, the
    leaderboard is printed, and the reader writes nothing."""
    settings = embedded_settings(tmp_path)
    clock = SimClock(T0)
    with Journal.open(settings, run_id="live", clock=clock) as writer:
        _run_events(writer, clock, "live")
        assert writer.sync(30)
        db_file = settings.mongo.embedded_dir / f"{settings.mongo.database}.sqlite3"
        before = db_file.stat().st_mtime_ns
        env = arena_env(tmp_path)
        report = subprocess.run(
            [ARENA, "report", "--run-id", "live"], cwd=ROOT, env=env, capture_output=True
        )
        assert report.returncode == 0, report.stderr.decode()
        assert b"leaderboard" in report.stdout and b"sma" in report.stdout
        assert b"Traceback" not in report.stderr
        assert db_file.stat().st_mtime_ns == before
        writer.record("decisions", {"strategy": "sma", "after": True})  # still the writer
        assert writer.sync(30)


def test_reader_creates_nothing_and_never_replays_the_spill(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path)
    root = settings.mongo.embedded_dir
    with Journal.open(settings, run_id="empty", readonly=True) as reader:
        assert reader.find("runs") == [] and reader.count("equity") == 0
        assert reader.latest_equity("empty") == {} and reader.checkpoint_ns("empty") == 0
    assert not root.exists()  # nothing created by a reader

    # A crashed writer left events in its spill: readers leave them for the writer's replay.
    with Journal.open(settings, run_id="crashed") as journal:
        journal.record("decisions", {"strategy": "sma", "i": 0})
        assert journal.sync(30)
        spill = SpillLog(journal.spill_path.parent, store.spill_name(settings.mongo))
        docs = journal.find("decisions")
        op = {"s": 1, "n": 1, "c": "decisions", "op": "ins", "id": "crashed:spilled", "d": {
            **docs[0], "_id": "crashed:spilled"}}  # fmt: skip
    spill.append([op])
    size = spill.spill_path.stat().st_size
    with Journal.open(settings, run_id="crashed", readonly=True) as reader:
        assert reader.count("decisions") == 1
    assert spill.spill_path.stat().st_size == size
    with Journal.open(settings, run_id="crashed") as writer:  # the owner replays it
        assert writer.sync(30)
        assert writer.count("decisions") == 2 and not spill.spill_path.exists()


def _docs(journal: Journal, kind: str) -> list[dict[str, Any]]:
    out = []
    for doc in journal.find(kind, sort=[("seq", 1)]):
        doc.pop("_id")
        doc.pop("event_id", None)
        out.append(doc)
    return out


def test_bulk_path_writes_the_same_documents_as_a_live_run(tmp_path: Path) -> None:
    kinds = ("runs", "equity", "decisions", "fills", "equity_latest", "equity_minute")
    results = {}
    for mode in ("live", "bulk"):
        settings = embedded_settings(tmp_path / mode)
        clock = SimClock(T0)
        with Journal.open(settings, run_id="same", clock=clock, bulk=mode == "bulk") as journal:
            _run_events(journal, clock, "same")
            assert journal.sync(30)
            results[mode] = {kind: _docs(journal, kind) for kind in kinds}
    assert results["live"] == results["bulk"]
    assert len(results["bulk"]["equity"]) == 72 and len(results["bulk"]["equity_minute"]) == 8


def test_bulk_replay_of_written_events_is_exactly_once(tmp_path: Path) -> None:
    """A spill of bulk inserts replayed after they reached the store (a crash between commit
    and spill deletion): the duplicates are recognised as written, never rejected or doubled."""
    settings = embedded_settings(tmp_path)
    with Journal.open(settings, run_id="bulk", bulk=True) as journal:
        ids = journal.record_many("decisions", [{"strategy": "sma", "i": i} for i in range(50)])
        assert journal.sync(30)
        docs = journal.find("decisions", sort=[("seq", 1)])
        spill_dir, rejects = journal.spill_path.parent, journal.rejects_path
    spill = SpillLog(spill_dir, store.spill_name(settings.mongo))
    spill.append(
        [
            {"s": 1, "n": d["seq"], "c": "decisions", "op": "new", "id": d["_id"], "d": d}
            for d in docs
        ]
    )
    with Journal.open(settings, run_id="bulk", bulk=True) as journal:
        assert journal.sync(30)
        assert [d["_id"] for d in journal.find("decisions", sort=[("seq", 1)])] == ids
    assert not rejects.exists()


def test_restart_and_report_readers_use_indexes(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path)
    clock = SimClock(T0)
    with Journal.open(settings, run_id="run-a", clock=clock) as journal:
        _run_events(journal, clock, "run-a")
        assert journal.sync(30)
        assert journal.checkpoint_ns("run-a") == T0 + 175 * S
        assert journal.checkpoint_ns("other") == 0
        window = journal.equity_window("run-a", "sma", start_ns=T0 + 60 * S, end_ns=T0 + 120 * S)
        assert [d["ts_ns"] for d in window] == [T0 + t * S for t in range(60, 120, 5)]
        minutes = journal.equity_window("run-a", "sma", per_minute=True)
        last: dict[int, int] = {}  # the last snapshot of each minute
        for t in range(0, 180, 5):
            last[(T0 + t * S) // (60 * S) * 60 * S] = T0 + t * S
        assert [(d["minute_ns"], d["ts_ns"]) for d in minutes] == sorted(last.items())
        assert len(minutes) == 4  # T0 is 20 s into a minute
        curves = journal.equity_curves("run-a", fields=("equity",))
        assert set(curves) == {"hold", "sma"} and len(curves["hold"]) == 36
        assert set(curves["sma"][0]) == {"_id", "ts_ns", "strategy", "equity"}
        assert [r["event"] for r in journal.runs("run-a")] == ["started"]

    client = store.connect(settings.mongo, StoreConfig(), readonly=True)
    try:
        db = client[settings.mongo.database]
        queries = [
            db["equity"].find({"run_id": "run-a"}).sort([("ts_ns", -1)]).limit(1),
            db["decisions"].find({"run_id": "run-a"}).sort([("ts_ns", -1)]).limit(1),
            db["equity"]
            .find({"run_id": "run-a", "strategy": "sma", "ts_ns": {"$gte": 0, "$lt": T0}})
            .sort([("ts_ns", 1), ("seq", 1)]),
            db["equity_minute"].find({"run_id": "run-a", "strategy": "sma"}).sort("ts_ns", 1),
            db["equity_latest"].find({"run_id": "run-a"}),
        ]
        for cursor in queries:
            plan = cursor.explain()["queryPlanner"]
            lines = " | ".join(plan["winningPlan"])
            assert "USING INDEX" in lines, plan
            assert "TEMP B-TREE" not in lines and not plan["residual"], plan
    finally:
        client.close()


def test_a_litemongo_journal_is_copied_at_the_first_writer_open(tmp_path: Path) -> None:
    """Journals written before the embedded store changed (litemongo's folder of SQLite files)
    are copied over once, so a run can still be resumed and reported."""
    import litemongo

    settings = embedded_settings(tmp_path)
    root = settings.mongo.embedded_dir
    client = litemongo.connect(str(root.absolute()), tz_aware=True)
    db = client[settings.mongo.database]
    db["fills"].insert_one({"_id": "old:1", "run_id": "old", "strategy": "sma", "ts_ns": 5})
    db["runs"].insert_one({"_id": "old:0", "run_id": "old", "event": "started", "ts_ns": 1})
    client.close()
    with Journal.open(settings, run_id="old") as journal:
        assert [d["_id"] for d in journal.find("fills", {"run_id": "old"})] == ["old:1"]
        assert journal.runs("old")[0]["event"] == "started"
    assert not (root / settings.mongo.database).exists()
    assert (root / f"{settings.mongo.database}.litemongo-migrated").is_dir()
