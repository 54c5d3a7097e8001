"""The dashboard's stale-while-revalidate cache keeps heavy views (a month-long run's report
costs seconds of CPU) from being recomputed back to back."""

from __future__ import annotations

import time

import pytest
from cryptoarena.dashboard import reader


def _spin(seconds: float, value: str) -> str:
    """Burn ``seconds`` of this thread's CPU (the cache measures CPU, not wall time)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass
    return value


def test_a_costly_view_waits_four_times_its_cost_before_it_is_recomputed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader, "RECOMPUTE_S", 0.0)  # only the cost rule is left
    cache = reader._Cache()
    assert cache.get("board", 1, lambda: _spin(0.2, "v1")) == "v1"
    # The data changed at once: the old value is served and no recompute starts yet.
    assert cache.get("board", 2, lambda: _spin(0.2, "v2")) == "v1"
    assert "board" not in cache._busy
    # A cheap view under the same rule is recomputed as soon as its data changes.
    assert cache.get("cheap", 1, lambda: "c1") == "c1"
    deadline = time.monotonic() + 30
    while cache.get("cheap", 2, lambda: "c2") != "c2":
        assert time.monotonic() < deadline, "the cheap view was never recomputed"
        time.sleep(0.01)


def test_the_dashboard_hands_the_gil_over_and_freezes_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc
    import sys

    from cryptoarena.config import Settings
    from cryptoarena.dashboard.cli import prefer_latency

    before = sys.getswitchinterval()
    monkeypatch.setenv("ARENA_DASHBOARD__SWITCH_INTERVAL_MS", "0.25")
    frozen = gc.get_freeze_count()  # another test may have started a dashboard in-process
    try:
        prefer_latency(Settings())
        assert sys.getswitchinterval() == pytest.approx(0.00025)
        # Start-up's objects are out of the collector's full passes (they stopped requests).
        assert gc.get_freeze_count() > frozen
    finally:
        sys.setswitchinterval(before)
        if not frozen:
            gc.unfreeze()
    monkeypatch.delenv("ARENA_DASHBOARD__SWITCH_INTERVAL_MS")
    assert Settings().dashboard.switch_interval_ms == 0.5  # the default: 10× Python's rate


def test_cpu_spent_in_a_child_process_paces_the_recompute_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A leaderboard built in a child process costs this thread nothing: the child's CPU it
    reports must count, or a month's report would be rebuilt every RECOMPUTE_S."""
    monkeypatch.setattr(reader, "RECOMPUTE_S", 0.0)
    cache = reader._Cache()
    assert cache.get_costed("board", 1, lambda: ("v1", 30.0)) == "v1"
    assert cache.get_costed("board", 2, lambda: ("v2", 30.0)) == "v1"
    assert "board" not in cache._busy  # due in 4 x 30 s, not now
    assert cache.get_costed("cheap", 1, lambda: ("c1", 0.0)) == "c1"
    deadline = time.monotonic() + 30
    while cache.get_costed("cheap", 2, lambda: ("c2", 0.0)) != "c2":
        assert time.monotonic() < deadline, "the cheap view was never recomputed"
        time.sleep(0.01)
