"""Journal fault tests on the embedded store, through real failures: an exclusive SQLite lock
held by another connection makes litemongo fail ("database is locked"), and a child process is
killed with SIGKILL while it writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptoarena.trading.journal import Journal, JournalConfig, WriterConfig

from tests.integration.journal_helpers import embedded_settings, sqlite_locked

CHILD = Path(__file__).with_name("journal_crash_child.py")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_outage_then_recovery_every_event_once_in_order(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path)
    config = JournalConfig(
        writer=WriterConfig(queue_size=16, batch_size=8, retry_initial_s=0.2, retry_max_s=0.5)
    )
    with Journal.open(settings, run_id="outage", config=config) as journal:
        predictions = {}
        for i in range(50):
            journal.record("decisions", {"strategy": "sma", "i": i})
        assert journal.sync(30) and journal.healthy

        with sqlite_locked(settings, "decisions"):
            for i in range(50, 250):
                journal.record("decisions", {"strategy": "sma", "i": i})
                if i % 50 == 0:
                    pid = journal.record("predictions", {"i": i, "price": 100.0 + i})
                    journal.set_prediction_outcome(pid, 200.0 + i, i)
                    predictions[pid] = 200.0 + i
            # The writer is stuck on the locked store: the small queue overflowed to disk.
            assert journal._writer.spill.overflow_path.exists()
            assert journal.flush(60)  # durable in the spill while the database is locked
            assert not journal.healthy
            assert journal.spill_path.exists()

        for i in range(250, 300):
            journal.record("decisions", {"strategy": "sma", "i": i})
        assert journal.sync(60)
        assert journal.healthy and not journal.spill_path.exists()

        docs = journal.find("decisions", {"run_id": "outage"}, sort=[("seq", 1)])
        assert [d["i"] for d in docs] == list(range(300))  # exactly once, in order
        for pid, price in predictions.items():
            (doc,) = journal.find("predictions", {"_id": pid})
            assert doc["realised_price"] == price


def _run_child_until_acked(root: Path, run_id: str, min_ack: int) -> int:
    """Start the child, wait for an ACK >= min_ack, SIGKILL it mid-write; return the last ACK."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(root), run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    last_ack = -1
    deadline = time.monotonic() + 90
    try:
        while last_ack < min_ack and time.monotonic() < deadline:
            line = proc.stdout.readline().decode().strip()
            if not line:
                break
            if line.startswith("ACK "):
                last_ack = int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert last_ack >= min_ack, "the child never acknowledged enough events"
    return last_ack


def _assert_prefix_once(journal: Journal, run_id: str, last_ack: int) -> None:
    docs = journal.find("decisions", {"run_id": run_id}, sort=[("seq", 1)])
    seen = [d["i"] for d in docs]
    assert len(seen) > last_ack  # every acknowledged event survived the kill
    assert seen == list(range(len(seen)))  # each once, in order, no holes


def test_sigkill_while_writing_loses_nothing_acknowledged(tmp_path: Path) -> None:
    last_ack = _run_child_until_acked(tmp_path, "crash", 300)
    settings = embedded_settings(tmp_path)
    with Journal.open(settings, run_id="crash-reopen") as journal:
        assert journal.sync(30)
        _assert_prefix_once(journal, "crash", last_ack)


def test_sigkill_during_outage_replays_the_spill_at_open(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path)
    with sqlite_locked(settings, "decisions"):
        last_ack = _run_child_until_acked(tmp_path, "crash-spill", 200)
    spills = list((settings.mongo.embedded_dir / "spill").glob("*.spill.jsonl"))
    assert len(spills) == 1  # the acknowledged events were only in the spill
    spill = spills[0]
    with Journal.open(settings, run_id="crash-reopen") as journal:
        assert journal.sync(30)
        assert not spill.exists()
        _assert_prefix_once(journal, "crash-spill", last_ack)


def test_mongodb_unreachable_spills_and_its_spill_is_never_replayed_elsewhere(
    tmp_path: Path,
) -> None:
    """pymongo against a port nobody listens on (connection refused): the journal opens in
    spill mode, records stay durable, reads say the database is unavailable. The spill belongs
    to that MongoDB store: an embedded journal sharing the spill directory (a reader or another
    writer) leaves it alone, and only the same store replays it (issue #9 item 5)."""
    import socket

    from cryptoarena.config import MongoSettings, Settings
    from cryptoarena.trading.journal import JournalUnavailableError, StoreConfig
    from pydantic import SecretStr

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spill_dir = tmp_path / "spill"
    down = Settings(
        mongo=MongoSettings(
            uri=SecretStr(f"mongodb://user:pw@127.0.0.1:{port}/?directConnection=true"),
            spill_dir=spill_dir,
        )
    )
    config = JournalConfig(store=StoreConfig(server_selection_timeout_ms=300), open_timeout_s=10)
    with Journal.open(down, run_id="mongo-down", config=config) as journal:
        for i in range(20):
            journal.record("decisions", {"strategy": "sma", "i": i})
        assert journal.flush(10)
        assert not journal.healthy
        with pytest.raises(JournalUnavailableError):
            journal.find("decisions")
        mongo_spill = journal.spill_path
        journal.close(timeout_s=1)
    assert mongo_spill.exists()
    before = mongo_spill.read_bytes()
    owner = mongo_spill.with_name(mongo_spill.name.replace(".spill.jsonl", ".store"))
    assert f"127.0.0.1:{port}" in owner.read_text() and "pw" not in owner.read_text()

    up = Settings(mongo=MongoSettings(embedded_dir=tmp_path / "journal", spill_dir=spill_dir))
    with Journal.open(up, run_id="embedded") as journal:
        assert journal.spill_path != mongo_spill
        assert journal.sync(30) and journal.healthy
        assert journal.find("decisions", {"run_id": "mongo-down"}) == []
    with Journal.open(up, run_id="reader", readonly=True) as reader:
        assert reader.find("decisions", {"run_id": "mongo-down"}) == []
    assert mongo_spill.read_bytes() == before  # still waiting for its own store
    # The same store (same hosts and database, other credentials) finds its spill again.
    again = Settings(
        mongo=MongoSettings(
            uri=SecretStr(f"mongodb://127.0.0.1:{port}/?directConnection=true"),
            spill_dir=spill_dir,
        )
    )
    with Journal.open(again, run_id="mongo-again", config=config) as journal:
        assert journal.spill_path == mongo_spill
        journal.close(timeout_s=0.5)
    assert mongo_spill.read_bytes() == before
