"""The journal contract, against litemongo (always) and a real MongoDB (when ARENA_MONGO__URI is
set; skipped otherwise). Fault tests (outage, crash) live in test_journal_faults.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pymongo
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.config import MongoSettings, Settings, get_settings
from cryptoarena.trading.journal import (
    KINDS,
    Journal,
    JournalClosedError,
    JournalConfig,
    JournalDocumentError,
    JournalLockedError,
    StoreConfig,
    store,
)
from pydantic import SecretStr

# Read before the autouse fixture clears ARENA_* for each test.
MONGO_URI = os.environ.get("ARENA_MONGO__URI")
SECRET = "SUPERSECRET-7f3a9c"


@pytest.fixture(
    params=[
        "embedded",
        pytest.param(
            "mongodb",
            marks=pytest.mark.skipif(not MONGO_URI, reason="ARENA_MONGO__URI not set"),
        ),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "embedded":
        yield Settings(mongo=MongoSettings(embedded_dir=tmp_path / "journal"))
        return
    assert MONGO_URI
    database = f"arena_test_{uuid.uuid4().hex[:10]}"
    yield Settings(
        mongo=MongoSettings(
            uri=SecretStr(MONGO_URI), database=database, spill_dir=tmp_path / "spill"
        )
    )
    pymongo.MongoClient(MONGO_URI, serverSelectionTimeoutMS=3000).drop_database(database)


def test_records_every_kind_in_order_with_unique_ids(settings: Settings) -> None:
    clock = SimClock(1_700_000_000_000_000_000)
    with Journal.open(settings, run_id="run-1", clock=clock) as journal:
        ids = []
        for i, kind in enumerate(KINDS * 3):
            clock.advance_to(clock.now_ns() + 1_000_000)
            doc = {"strategy": "sma", "i": i, "client_id": f"c-{i}"}
            ids.append(journal.record(kind, doc))
        assert len(set(ids)) == len(ids)
        assert ids == sorted(ids)  # ids sort in recording order within a run
        assert journal.sync(30)
        for kind in KINDS:
            docs = journal.find(kind, {"run_id": "run-1"}, sort=[("seq", 1)])
            assert len(docs) == 3
            assert [d["i"] for d in docs] == sorted(d["i"] for d in docs)
            assert all(d["ts_ns"] > 1_700_000_000_000_000_000 for d in docs)


def test_prediction_outcome_is_filled_in_later(settings: Settings) -> None:
    with Journal.open(settings, run_id="run-p") as journal:
        pid = journal.record("predictions", {"bar_ts_ns": 5, "price": 50_000.0, "horizon_s": 15})
        journal.set_prediction_outcome(pid, 50_010.5, 20)
        assert journal.sync(30)
        (doc,) = journal.find("predictions", {"_id": pid})
        assert doc["realised_price"] == 50_010.5
        assert doc["realised_ts_ns"] == 20
        assert doc["price"] == 50_000.0


def test_read_models_summaries_and_latest_equity(settings: Settings) -> None:
    clock = SimClock(1_000)
    with Journal.open(settings, run_id="run-r", clock=clock) as journal:
        for step in range(3):
            clock.advance_to(clock.now_ns() + 1_000)
            for strategy in ("sma", "lstm"):
                journal.record(
                    "equity", {"strategy": strategy, "equity": 100.0 + step, "cash": "90.5"}
                )
        journal.upsert_summary("sma", {"trades": 1, "pnl": 1.5})
        journal.upsert_summary("sma", {"trades": 2, "pnl": 2.5})
        assert journal.sync(30)
        books = journal.last_books("run-r")
        assert set(books) == {"sma", "lstm"}
        assert all(book["equity"] == 102.0 for book in books.values())
        assert journal.last_books("other-run") == {}
        summaries = journal.summaries()
        assert summaries["sma"]["trades"] == 2 and summaries["sma"]["pnl"] == 2.5
        assert journal.count("summaries") == 1
        assert journal.count("equity", {"run_id": "run-r"}) == 6


def test_restart_readers_and_duplicate_client_id(settings: Settings) -> None:
    with Journal.open(settings, run_id="run-o") as journal:
        journal.record("orders", {"strategy": "sma", "client_id": "sma-1", "qty": Decimal("0.001")})
        journal.record("orders", {"strategy": "sma", "client_id": "sma-2", "qty": Decimal("0.002")})
        # A client id is sent at most once: a second order with it is refused by the unique
        # index, kept in the rejects file, and does not stop later writes.
        journal.record("orders", {"strategy": "rsi", "client_id": "sma-1"})
        journal.record("fills", {"strategy": "sma", "client_id": "sma-2", "price": "50000.1"})
        assert journal.sync(30)
        assert journal.healthy
        assert journal.sent_client_ids("run-o") == {"sma-1", "sma-2"}
        assert journal.count("orders") == 2
        assert journal.count("fills") == 1
        (order,) = journal.find("orders", {"client_id": "sma-2"})
        assert Decimal(order["qty"]) == Decimal("0.002")  # Decimals kept exact, as text
        rejects = journal.rejects_path
        assert "sma-1" in rejects.read_text()
    # Reopened with the same run id: the data is still there and ids do not collide.
    with Journal.open(settings, run_id="run-o") as journal:
        assert journal.sent_client_ids("run-o") == {"sma-1", "sma-2"}
        journal.record("orders", {"strategy": "sma", "client_id": "sma-3"})
        assert journal.sync(30)
        assert journal.sent_client_ids("run-o") == {"sma-1", "sma-2", "sma-3"}


def test_indexes_for_dashboard_queries(settings: Settings) -> None:
    with Journal.open(settings, run_id="run-i") as journal:
        journal.record("decisions", {"strategy": "sma"})
        assert journal.sync(30)
    client = store.connect(settings.mongo, StoreConfig(), readonly=True)
    try:
        db = client[settings.mongo.database]
        orders = db["orders"].index_information()
        assert orders["client_id_1"]["unique"] is True
        assert "run_id_1_ts_ns_1" in db["decisions"].index_information()
        assert "strategy_1_ts_ns_1" in db["equity"].index_information()
        assert "run_id_1_strategy_1_ts_ns_1_seq_1" in db["equity"].index_information()
        if settings.mongo.uri is None:  # real SQLite indexes: a window query is an index search
            cursor = db["equity"].find({"run_id": "r", "ts_ns": {"$gt": 0}}).sort("ts_ns", -1)
            plan = " | ".join(cursor.limit(1).explain()["queryPlanner"]["winningPlan"])
            assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        client.close()


def test_secrets_and_settings_never_stored(settings: Settings, tmp_path: Path) -> None:
    secret_settings = Settings(bybit={"api_key": SECRET, "api_secret": SECRET})  # type: ignore[arg-type]
    with Journal.open(settings, run_id="run-s") as journal:
        eid = journal.record(
            "decisions",
            {
                "strategy": "sma",
                "api_key": SECRET,
                "nested": {"Authorization": f"Bearer {SECRET}", "note": "kept"},
                "harmless_name": SecretStr(SECRET),
                "headers": [{"X-BAPI-SIGN": SECRET, "recvWindow": 5000}],
            },
        )
        with pytest.raises(JournalDocumentError, match="settings"):
            journal.record("model_events", {"config": secret_settings})
        with pytest.raises(JournalDocumentError, match="settings"):
            journal.record("model_events", {"deep": [{"s": get_settings()}]})
        with pytest.raises(ValueError, match="unknown journal kind"):
            journal.record("bogus", {})
        with pytest.raises(JournalDocumentError, match="client_id"):
            journal.record("orders", {"strategy": "sma"})
        assert journal.sync(30)
        (doc,) = journal.find("decisions", {"_id": eid})
        assert doc["nested"] == {"note": "kept"}
        assert "api_key" not in doc and "harmless_name" not in doc
        assert doc["headers"] == [{"recvWindow": 5000}]
    if settings.mongo.uri is None:
        for path in settings.mongo.embedded_dir.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


def test_single_writer_lock(settings: Settings) -> None:
    with Journal.open(settings, run_id="run-l"), pytest.raises(JournalLockedError):
        Journal.open(settings, run_id="run-l2", config=JournalConfig())


def test_readonly_reader_beside_the_writer(settings: Settings) -> None:
    with Journal.open(settings, run_id="run-w") as writer:
        writer.record("decisions", {"strategy": "sma", "i": 1})
        assert writer.sync(30)
        with Journal.open(settings, run_id="run-w", readonly=True) as reader:
            assert [d["i"] for d in reader.find("decisions", {"run_id": "run-w"})] == [1]
            with pytest.raises(JournalClosedError, match="read-only"):
                reader.record("decisions", {"strategy": "sma"})
            writer.record("decisions", {"strategy": "sma", "i": 2})
            assert writer.sync(30)
            assert reader.count("decisions", {"run_id": "run-w"}) == 2  # sees new writes


def test_unencodable_document_is_rejected_not_blocking(settings: Settings) -> None:
    with Journal.open(settings, run_id="run-u") as journal:
        journal.record("decisions", {"strategy": "sma", "i": 0})
        bad = journal.record("decisions", {"strategy": "sma", "i": 1, "note": "\ud800"})
        journal.record("decisions", {"strategy": "sma", "i": 2})
        assert journal.sync(30) and journal.healthy
        assert [d["i"] for d in journal.find("decisions", sort=[("seq", 1)])] == [0, 2]
        rejects = journal.rejects_path
        assert bad in rejects.read_text()
        with pytest.raises(JournalDocumentError, match="NUL"):
            journal.record("decisions", {"strategy": "sma", "a\x00b": 1})
