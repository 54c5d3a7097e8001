"""A read-only journal (the dashboard's, `arena report`'s) runs reads side by side: a long read
(a month's curves for the leaderboard) must not queue the small ones behind it (the dashboard's
/api/status waited up to 4.5 s behind a 30-day report)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cryptoarena.config import Settings
from cryptoarena.trading.journal import Journal


def test_a_short_read_is_not_queued_behind_a_long_one(tmp_path: Path) -> None:
    settings = Settings(mongo={"embedded_dir": tmp_path})  # type: ignore[arg-type]
    with Journal.open(settings, run_id="r") as writer:
        writer.record("runs", {"event": "started", "ts_ns": 1})
        writer.flush()
    with Journal.open(settings, run_id="reader", readonly=True) as reader:
        assert reader.count("runs", {"run_id": "r"}) == 1  # the precondition: data to read
        inside, release = threading.Event(), threading.Event()

        def long_read(db: Any) -> int:
            inside.set()
            assert release.wait(60), "never released"
            return 0

        slow = threading.Thread(target=reader._read, args=(long_read,))
        slow.start()
        try:
            assert inside.wait(30)
            done = threading.Event()
            answer: list[int] = []

            def short() -> None:
                answer.append(reader.count("runs", {"run_id": "r"}))
                done.set()

            threading.Thread(target=short, daemon=True).start()
            assert done.wait(30), "the short read waited for the long one"
            assert answer == [1]
        finally:
            release.set()
            slow.join(60)
