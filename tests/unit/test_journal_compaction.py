"""Journal compaction (issue #19 item 4): raw equity snapshots older than an age are deleted
without changing any report or verdict; the journal's growth per day is reported."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pymongo
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.config import MongoSettings, Settings
from cryptoarena.trading.journal import Journal, JournalClosedError
from cryptoarena.trading.journal.compaction import compact, journal_stats
from cryptoarena.trading.results.render import render_json
from cryptoarena.trading.results.source import RAW_SNAPSHOT_LIMIT, build_report
from pydantic import SecretStr

T0 = 1_582_329_600_000_000_000  # 2020-02-22 00:00 UTC
NS = 10**9
NAMES = [("ai", "ai"), ("sma", "classical"), ("hold", "reference")]
MONGO_URI = os.environ.get("ARENA_MONGO__URI")  # read before the autouse fixture clears it


@pytest.fixture(params=["embedded", pytest.param("mongodb", marks=pytest.mark.skipif(
    not MONGO_URI, reason="ARENA_MONGO__URI not set"))])  # fmt: skip
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The same policy on both stores: compaction goes through the store's own delete_many."""
    if request.param == "embedded":
        yield Settings(mongo=MongoSettings(embedded_dir=tmp_path / "journal"), home=tmp_path)
        return
    assert MONGO_URI
    database = f"arena_test_{uuid.uuid4().hex[:10]}"
    yield Settings(mongo=MongoSettings(uri=SecretStr(MONGO_URI), database=database,
                                       spill_dir=tmp_path / "spill"), home=tmp_path)  # fmt: skip
    pymongo.MongoClient(MONGO_URI, serverSelectionTimeoutMS=3000).drop_database(database)


def _record(settings: Settings, run_id: str, n: int) -> None:
    """A run as the worker journals one: started, a snapshot every 5 s per strategy, fills,
    a forecast every 10 s, stopped."""
    clock = SimClock(T0)
    rng = np.random.default_rng(n)
    with Journal.open(settings, run_id=run_id, clock=clock, bulk=True) as j:
        j.record("runs", {"event": "started", "ts_ns": T0, "arena": {"capital": 10_000.0},
                          "strategies": [{"name": s, "family": f} for s, f in NAMES]})  # fmt: skip
        equity = {s: 10_000.0 for s, _ in NAMES}
        snaps, fills, preds = [], [], []
        for i in range(n):
            ts = T0 + i * 5 * NS
            for name, _ in NAMES:
                equity[name] *= 1 + rng.normal(0, 1e-4)
                snaps.append({"strategy": name, "ts_ns": ts, "equity": equity[name], "qty": 0.1,
                              "mark": 9_700.0, "fees": 1.0, "fills": i // 50, "round_trips": i // 100,
                              "wins": i // 200, "exact": {"capital": "10000"}})  # fmt: skip
            if i % 50 == 0:
                fills.append({"strategy": "sma", "ts_ns": ts, "side": "buy", "price": 9_700.0,
                              "qty": 0.01, "fee": 0.05})  # fmt: skip
            if i % 2 == 0:
                preds.append({"ts_ns": ts, "base_price": 9_700.0, "predicted_price": 9_701.0,
                              "realised_price": 9_700.0 + rng.normal(), "model_version": "1",
                              "horizon_s": 15})  # fmt: skip
        j.record_many("equity", snaps)
        j.record_many("fills", fills)
        j.record_many("predictions", preds)
        clock.advance_to(T0 + n * 5 * NS)
        j.record("runs", {"event": "stopped", "stopped_by": "feed ended"})
        assert j.sync(120)


def test_compaction_keeps_every_report_and_verdict(settings: Settings) -> None:
    long_n, short_n = RAW_SNAPSHOT_LIMIT + 1_000, 300
    _record(settings, "long", long_n)
    _record(settings, "short", short_n)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        before = {r: render_json(build_report(journal, r)) for r in ("long", "short")}
        raw_before = journal.count("equity", {"run_id": "long"})
    assert raw_before == long_n * len(NAMES)

    with Journal.open(settings, run_id="compact") as journal:
        with pytest.raises(ValueError, match="at least"):
            compact(journal, 60.0)  # younger than the dashboard's raw hour
        dry = compact(journal, 2 * 3_600.0, dry_run=True)
        done = compact(journal, 2 * 3_600.0)
    # The long run keeps its newest two hours of raw snapshots; the short one is kept whole.
    kept_raw = (2 * 3_600 // 5 + 1) * len(NAMES)
    assert done.deleted == dry.deleted == {"long": raw_before - kept_raw}
    assert done.kept == ["short"]

    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        assert journal.count("equity", {"run_id": "long"}) == kept_raw
        assert journal.count("equity", {"run_id": "short"}) == short_n * len(NAMES)
        after = {r: render_json(build_report(journal, r)) for r in ("long", "short")}
    assert after == before


def test_journal_stats_counts_documents_per_day_and_size(settings: Settings) -> None:
    _record(settings, "day", 200)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        stats = journal_stats(journal)
    (run,) = stats.runs
    assert run.run_id == "day" and list(run.days) == [T0]
    counts = run.days[T0]
    assert counts["equity"] == 200 * len(NAMES) and counts["fills"] == 4
    assert counts["predictions"] == 100 and counts["runs"] == 2
    assert stats.days == 1 and stats.storage_bytes > 0
    assert stats.bytes_per_day == stats.storage_bytes


def test_delete_filters_beyond_the_indexed_fields_too(settings: Settings) -> None:
    with Journal.open(settings, run_id="d") as journal:
        journal.record_many("fills", [{"strategy": "a", "price": p} for p in (1.0, 2.0, 3.0)])
        assert journal.sync(30)
        # ``price`` is no indexed column: the embedded store checks it in Python.
        assert journal.delete("fills", {"run_id": "d", "price": {"$gte": 2.0}}) == 2
        assert [d["price"] for d in journal.find("fills", {"run_id": "d"})] == [1.0]
    with (
        Journal.open(settings, run_id="r", readonly=True) as reader,
        pytest.raises(JournalClosedError),
    ):
        reader.delete("fills", {"run_id": "d"})


def test_the_journal_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`arena journal stats` prints the day's documents and MB/day; a too young age for
    `arena journal compact` is one error line, exit 2, and nothing deleted."""
    from cryptoarena.cli import app
    from typer.testing import CliRunner

    settings = Settings(mongo=MongoSettings(embedded_dir=tmp_path / "journal"), home=tmp_path)
    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    _record(settings, "day", 100)
    runner = CliRunner()
    out = runner.invoke(app, ["journal", "stats"])
    assert out.exit_code == 0, out.output
    assert "2020-02-22: " in out.output and "equity 300" in out.output and "MB/day" in out.output
    bad = runner.invoke(app, ["journal", "compact", "--older-than-days", "0.01"])
    assert bad.exit_code == 2
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in bad.output
    with Journal.open(settings, run_id="r", readonly=True) as reader:
        assert reader.count("equity", {"run_id": "day"}) == 300
    done = runner.invoke(app, ["journal", "compact", "--dry-run"])
    assert done.exit_code == 0 and "kept whole" in done.output and "day" in done.output
