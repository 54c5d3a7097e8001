"""A long run's leaderboard, built in a short-lived child process.

A month-long run's report costs seconds of CPU and reads hundreds of thousands of documents
(the per-minute curves of every strategy). Built in the dashboard's own process, that work
shared the GIL, the collector and the journal's readers with every route: in the 30-day soak
the status and risk routes waited 100-570 ms while it ran (docs/benchmarks.md, "The 30-day
soak"). So once a run's report has cost more than ``CHILD_ABOVE_S`` of CPU,
:class:`~cryptoarena.dashboard.reader.DashboardReader` builds the next one here; short runs
(seconds of tape, a demo) stay in-process, where a report costs milliseconds and a child's
start-up (~0.5 s of CPU) would dominate.

    python -m cryptoarena.dashboard.report_child < {"mongo": {...}, "run_id": ...}

reads the request on stdin (a MongoDB URI may carry credentials, which argv would show to every
user of ``ps``) and writes one JSON object to stdout: ``board`` (the Leaderboard), ``cpu_s`` (the child's own
CPU time) and ``nice`` (its niceness: it lowers its priority by ``NICENESS`` first), or
``error`` with why it could not be built.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import threading
from typing import Any, NamedTuple

from cryptoarena.config import MongoSettings
from cryptoarena.dashboard import child_json
from cryptoarena.dashboard import schemas as s

logger = logging.getLogger(__name__)

CHILD_ABOVE_S = 0.5  # a run whose last report cost more CPU than this gets its next one here
# The child's niceness: background work, so on a busy machine the routes get the CPU first.
NICENESS = 10
TIMEOUT_S = 600.0  # a month's report takes ~5 s on this 2-core machine; a stuck one is stopped


def request_of(mongo: MongoSettings, run_id: str) -> dict[str, Any]:
    """The child's request: the journal's settings (with the URI's secret, sent on stdin)."""
    return {
        "mongo": {
            "uri": mongo.uri.get_secret_value() if mongo.uri is not None else None,
            "database": mongo.database,
            "embedded_dir": str(mongo.embedded_dir),
        },
        "run_id": run_id,
    }


class Built(NamedTuple):
    board: s.Leaderboard
    cpu_s: float  # the child's own CPU time
    nice: int  # the child's niceness while it built the board


class ReportChild:
    """Builds a run's leaderboard in a child process; :meth:`close` stops one under way."""

    def __init__(self, mongo: MongoSettings, *, timeout_s: float = TIMEOUT_S) -> None:
        self._mongo = mongo
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._closed = False

    def build(self, run_id: str) -> Built:
        """The leaderboard of ``run_id``, the CPU seconds the child spent on it and the child's
        niceness. Raises RuntimeError when the child could not build it (the caller keeps the
        previous one)."""
        proc = child_json.start("cryptoarena.dashboard.report_child")
        with self._lock:
            if self._closed:
                proc.kill()
            self._running.add(proc)
        try:
            out, err = proc.communicate(
                json.dumps(request_of(self._mongo, run_id)), timeout=self._timeout_s
            )
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError(f"the report child took over {self._timeout_s:.0f} s") from None
        finally:
            with self._lock:
                self._running.discard(proc)
        try:
            answer = json.loads(out)
        except json.JSONDecodeError:
            answer = {"error": f"exit {proc.returncode}: {err.strip()[-300:]}"}
        if "error" in answer:
            raise RuntimeError(f"the report child failed: {answer['error']}")
        board = s.Leaderboard.model_validate(answer["board"])
        return Built(board, float(answer["cpu_s"]), int(answer["nice"]))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            running = list(self._running)
        for proc in running:
            proc.kill()


def build_answer(request: dict[str, Any]) -> dict[str, Any]:
    """The child's work: the board of the request's run, its CPU time and niceness."""
    from cryptoarena.config import Settings
    from cryptoarena.dashboard.reader import leaderboard_of
    from cryptoarena.trading.journal import Journal

    settings = Settings(mongo=MongoSettings(**request["mongo"]))
    journal = Journal.open(settings, run_id="dashboard-report", readonly=True)
    try:
        board = leaderboard_of(journal, str(request["run_id"]))
    finally:
        journal.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "board": board.model_dump(mode="json"),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "nice": os.nice(0),
    }


def main() -> None:
    os.nice(NICENESS)  # the routes first: a month's report can wait a little
    child_json.answer(build_answer)


if __name__ == "__main__":
    main()
